//! The Unix `SOCK_SEQPACKET` socket under a link: abstract names (Linux),
//! whole-packet sends, and a receive that polls briefly before it blocks.
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn address(name: &str) -> Result<(libc::sockaddr_un, libc::socklen_t), String> {
    // SAFETY: a zeroed sockaddr_un is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = name.as_bytes();
    // Abstract: a leading NUL, then the name.
    if bytes.len() + 1 > addr.sun_path.len() {
        return Err("link name too long".into());
    }
    for (i, b) in bytes.iter().enumerate() {
        addr.sun_path[i + 1] = *b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + bytes.len();
    Ok((addr, len as libc::socklen_t))
}

fn new_socket() -> Result<i32, String> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        Err(format!("socket: {}", std::io::Error::last_os_error()))
    } else {
        Ok(fd)
    }
}

pub fn listen() -> Result<(i32, String), String> {
    let name = format!(
        "py-link-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (addr, len) = address(&name)?;
    let fd = new_socket()?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    let bound = unsafe { libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len) };
    // SAFETY: fd is a socket.
    if bound != 0 || unsafe { libc::listen(fd, 1) } != 0 {
        let error = std::io::Error::last_os_error();
        close(fd);
        return Err(format!("bind/listen: {error}"));
    }
    Ok((fd, name))
}

/// Accepts one connection within `timeout_ms`, then closes the listener.
pub fn accept(listener: i32, timeout_ms: i32) -> Option<i32> {
    let mut poll = libc::pollfd {
        fd: listener,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    let fd = if ready == 1 {
        // SAFETY: accept on a listening socket; the peer address is not wanted.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        (fd >= 0).then_some(fd)
    } else {
        None
    };
    close(listener);
    fd
}

pub fn connect(name: &str) -> Result<i32, String> {
    let (addr, len) = address(name)?;
    let fd = new_socket()?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    let done = unsafe { libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len) };
    if done != 0 {
        let error = std::io::Error::last_os_error();
        close(fd);
        return Err(format!("connect: {error}"));
    }
    Ok(fd)
}

/// Sends one packet: `Ok(true)` sent, `Ok(false)` the socket is full (only
/// when `wait` is false), `Err` the line is down.
pub fn send(fd: i32, frame: &[u8], wait: bool) -> Result<bool, ()> {
    let flags = libc::MSG_NOSIGNAL | if wait { 0 } else { libc::MSG_DONTWAIT };
    loop {
        // SAFETY: frame is a valid buffer of its length.
        let n = unsafe {
            libc::send(
                fd,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                flags,
            )
        };
        if n >= 0 {
            return Ok(true);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(false),
            _ => return Err(()),
        }
    }
}

/// One packet if one is there: `Ok(Some(len))`, `Ok(None)` none now,
/// `Err` the line is down.
pub fn try_recv(fd: i32, buffer: &mut [u8]) -> Result<Option<usize>, ()> {
    loop {
        // SAFETY: buffer is valid for its length.
        let n = unsafe {
            libc::recv(
                fd,
                buffer.as_mut_ptr() as *mut libc::c_void,
                buffer.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            return Ok(Some(n as usize));
        }
        if n == 0 {
            return Err(());
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(()),
        }
    }
}

/// One packet, waiting up to `timeout_ms` for it.
pub fn recv_wait(fd: i32, buffer: &mut [u8], timeout_ms: i32) -> Result<Option<usize>, ()> {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    if ready < 0 {
        return match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => Ok(None),
            _ => Err(()),
        };
    }
    if ready == 0 {
        return Ok(None);
    }
    try_recv(fd, buffer)
}

pub fn shutdown(fd: i32) {
    // SAFETY: shutting down a socket we own wakes its blocked reader.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own, once.
    unsafe { libc::close(fd) };
}
