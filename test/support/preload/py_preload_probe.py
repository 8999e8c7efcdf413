VALUE = 'from the preload path'
