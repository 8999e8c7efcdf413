//! The handle of an object that lives in an isolated context's OS process
//! or on another node (`Py.Isolated`): the `ref` of a `%Py.Object{}` on
//! this node. It holds no Python object, only where the object is (the
//! owner process of the isolated context, its generation, the object's id
//! there). When the BEAM frees the last copy of the handle, a thread of
//! this library tells the owner, which has the object released there.
//!
//! `Drop` runs wherever the garbage collector frees the resource, where a
//! message cannot be sent; it only queues the notice.
use rustler::{Encoder, LocalPid, OwnedEnv, Resource, ResourceArc};
use std::sync::OnceLock;

pub struct RemoteObjectRes {
    pub owner: LocalPid,
    pub generation: u64,
    pub id: u64,
}

#[rustler::resource_impl]
impl Resource for RemoteObjectRes {}

struct Notice {
    owner: LocalPid,
    generation: u64,
    id: u64,
}

static RELEASES: OnceLock<flume::Sender<Notice>> = OnceLock::new();

fn releases() -> Option<&'static flume::Sender<Notice>> {
    if let Some(sender) = RELEASES.get() {
        return Some(sender);
    }
    let (tx, rx) = flume::unbounded::<Notice>();
    let started = std::thread::Builder::new()
        .name("py-remote-release".into())
        .spawn(move || {
            let mut env = OwnedEnv::new();
            while let Ok(notice) = rx.recv() {
                let _ = env.send_and_clear(&notice.owner, |env| {
                    (
                        crate::atoms::py_isolated_release(),
                        notice.generation,
                        notice.id,
                    )
                        .encode(env)
                });
            }
        });
    match started {
        Ok(_) => {
            let _ = RELEASES.set(tx);
            RELEASES.get()
        }
        Err(_) => None,
    }
}

impl Drop for RemoteObjectRes {
    fn drop(&mut self) {
        if let Some(sender) = releases() {
            let _ = sender.send(Notice {
                owner: self.owner,
                generation: self.generation,
                id: self.id,
            });
        }
    }
}

pub fn new(owner: LocalPid, generation: u64, id: u64) -> ResourceArc<RemoteObjectRes> {
    ResourceArc::new(RemoteObjectRes {
        owner,
        generation,
        id,
    })
}
