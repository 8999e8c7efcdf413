import Config

# `py` reads its settings from the application environment:
#
#     config :py,
#       python: "/path/to/python3",   # or env PY_PYTHON; default: python3 on PATH
#       pool_size: 4,                  # default: System.schedulers_online()
#       timeout: 30_000                # default call timeout in ms
#
# Working on py itself builds the NIF from source, even when a checksum
# file lists a precompiled one (a dependency's config is not loaded, so
# projects that use py still get the precompiled NIF; docs/packaging.md).
config :py, force_build: true

if File.exists?(Path.join(__DIR__, "#{config_env()}.exs")) do
  import_config "#{config_env()}.exs"
end
