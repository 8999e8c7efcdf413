//! Channels and buffers: Elixir feeding Python.
use crate::atoms;
use crate::{buffer, channel, copy_cost};
use rustler::{Encoder, Env, ResourceArc, Term};

/// A channel owned (and monitored) by the calling process; `capacity` 0
/// means no limit.
#[rustler::nif]
fn channel_new(env: Env, capacity: usize) -> Term {
    let channel = ResourceArc::new(channel::ChannelRes(channel::new(capacity)));
    if channel.monitor(Some(env), &env.pid()).is_none() {
        channel::close(&channel.0);
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), channel).encode(env)
}

/// `:ok`, `{:error, :full}` or `{:error, :closed}`; `:large` (nothing
/// sent) for a term too large to copy here: repeat it with
/// `channel_send_large`.
#[rustler::nif]
fn channel_send<'a>(
    env: Env<'a>,
    ch: ResourceArc<channel::ChannelRes>,
    term: Term<'a>,
) -> Term<'a> {
    if !copy_cost::cheap(term) {
        return atoms::large().encode(env);
    }
    channel_send_now(env, &ch, term)
}

/// `channel_send` of a large term, copied on a dirty scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn channel_send_large<'a>(
    env: Env<'a>,
    ch: ResourceArc<channel::ChannelRes>,
    term: Term<'a>,
) -> Term<'a> {
    channel_send_now(env, &ch, term)
}

fn channel_send_now<'a>(env: Env<'a>, ch: &channel::ChannelRes, term: Term<'a>) -> Term<'a> {
    match channel::send(&ch.0, term) {
        Ok(()) => atoms::ok().encode(env),
        Err(channel::SendError::Full) => (atoms::error(), atoms::full()).encode(env),
        Err(channel::SendError::Closed) => (atoms::error(), atoms::closed()).encode(env),
    }
}

#[rustler::nif]
fn channel_close(ch: ResourceArc<channel::ChannelRes>) -> rustler::Atom {
    channel::close(&ch.0);
    atoms::ok()
}

/// A buffer owned (and monitored) by the calling process; `max_size` 0
/// means no limit.
#[rustler::nif]
fn buffer_new(env: Env, max_size: usize) -> Term {
    let buffer = ResourceArc::new(buffer::BufferRes(buffer::new(max_size)));
    if buffer.monitor(Some(env), &env.pid()).is_none() {
        buffer::close(&buffer.0);
        return (atoms::error(), "cannot monitor the owner process").encode(env);
    }
    (atoms::ok(), buffer).encode(env)
}

/// `:ok`, `{:error, :full}`, `{:error, :closed}` or `{:error, :not_binary}`.
#[rustler::nif]
fn buffer_write<'a>(env: Env<'a>, buf: ResourceArc<buffer::BufferRes>, data: Term<'a>) -> Term<'a> {
    match buffer::write(&buf.0, data) {
        Ok(()) => atoms::ok().encode(env),
        Err(buffer::WriteError::Full) => (atoms::error(), atoms::full()).encode(env),
        Err(buffer::WriteError::Closed) => (atoms::error(), atoms::closed()).encode(env),
        Err(buffer::WriteError::NotBinary) => (atoms::error(), atoms::not_binary()).encode(env),
    }
}

#[rustler::nif]
fn buffer_close(buf: ResourceArc<buffer::BufferRes>) -> rustler::Atom {
    buffer::close(&buf.0);
    atoms::ok()
}
