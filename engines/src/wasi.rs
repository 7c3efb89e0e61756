//! WASI preview 1 for portable (wasm) capability providers, with nothing of
//! the machine mapped in: no files, no directories, no sockets.
//!
//! What a provider gets: the arguments and environment variables its host
//! configuration names (none by default), the real-time and monotonic
//! clocks, random bytes from the operating system, standard output and
//! standard error as log lines (through [`HostHandler::console_log`]), and an
//! empty standard input. There are no preopened directories, so file access
//! fails the way a WASI program expects when it was given none; every other
//! preview 1 function the module imports answers `ENOSYS` (or `ENOTCAPABLE`
//! for path and socket functions) instead of failing the link.
//!
//! Written here rather than taken from `wasmtime-wasi`, which needs
//! wasmtime's component model compiled in for every actor of the host.

use crate::limits::{MAX_GUEST_BUFFER, MAX_WASI_LINE};
use crate::wapc::{WapcState, read_guest, write_guest};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, ExternType, Linker, Module, Val, ValType};

/// The import module of WASI preview 1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

// Error numbers of WASI preview 1 (`wasi_snapshot_preview1` witx).
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;
const ENOTCAPABLE: i32 = 76;

/// `filetype::character_device`: what stdin, stdout and stderr are.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_read` and `rights::fd_write`.
const RIGHTS_FD_READ: u64 = 1 << 1;
const RIGHTS_FD_WRITE: u64 = 1 << 6;

/// What a portable provider's WASI shows of the host: arguments and
/// environment variables (nothing by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasiConfig {
    /// Program arguments (`argv`, the first is conventionally the name).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
}

/// The WASI state of one instance.
pub(crate) struct WasiCtx {
    /// Each argument, NUL-terminated.
    args: Vec<Vec<u8>>,
    /// Each `KEY=value`, NUL-terminated.
    env: Vec<Vec<u8>>,
    /// Unfinished lines of standard output and standard error.
    pending: [Vec<u8>; 2],
}

impl WasiCtx {
    pub(crate) fn new(cfg: &WasiConfig) -> Self {
        let nul = |s: String| {
            let mut b = s.into_bytes();
            b.push(0);
            b
        };
        WasiCtx {
            args: cfg.args.iter().cloned().map(nul).collect(),
            env: cfg
                .env
                .iter()
                .map(|(k, v)| nul(format!("{k}={v}")))
                .collect(),
            pending: [Vec::new(), Vec::new()],
        }
    }
}

/// Hands the complete lines of `st`'s standard output and error to the
/// handler's console log; with `all`, the unfinished ones too.
pub(crate) fn flush_output(st: &mut WapcState, all: bool) {
    let Some(wasi) = st.wasi.as_mut() else {
        return;
    };
    for buf in &mut wasi.pending {
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            st.handler
                .console_log(&st.actor, String::from_utf8_lossy(&line[..end]).trim_end());
        }
        if (all || buf.len() >= MAX_WASI_LINE) && !buf.is_empty() {
            st.handler
                .console_log(&st.actor, &String::from_utf8_lossy(buf));
            buf.clear();
        }
    }
}

fn ctx<'a>(caller: &'a mut Caller<'_, WapcState>) -> &'a mut WasiCtx {
    caller
        .data_mut()
        .wasi
        .get_or_insert_with(|| Box::new(WasiCtx::new(&WasiConfig::default())))
}

/// Writes `bytes` at `ptr`; `EFAULT` when it does not fit in guest memory.
fn put(caller: &mut Caller<'_, WapcState>, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    write_guest(caller, ptr, bytes, "wasi result").map_err(|_| EFAULT)
}

fn errno(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(SUCCESS)
}

/// Writes a list of NUL-terminated strings the way `args_get` and
/// `environ_get` do: pointers at `ptrs`, the bytes at `buf`.
fn put_strings(
    caller: &mut Caller<'_, WapcState>,
    ptrs: i32,
    buf: i32,
    strings: fn(&WasiCtx) -> &Vec<Vec<u8>>,
) -> i32 {
    let list = strings(ctx(caller)).clone();
    let mut at = buf as u32;
    for (i, s) in list.iter().enumerate() {
        let slot = (ptrs as u32).wrapping_add(4 * i as u32) as i32;
        if let Err(e) = put(caller, slot, &at.to_le_bytes()).and_then(|_| put(caller, at as i32, s))
        {
            return e;
        }
        at = at.wrapping_add(s.len() as u32);
    }
    SUCCESS
}

fn put_sizes(
    caller: &mut Caller<'_, WapcState>,
    count_ptr: i32,
    size_ptr: i32,
    strings: fn(&WasiCtx) -> &Vec<Vec<u8>>,
) -> i32 {
    let list = strings(ctx(caller));
    let (count, size) = (
        list.len() as u32,
        list.iter().map(Vec::len).sum::<usize>() as u32,
    );
    errno(
        put(caller, count_ptr, &count.to_le_bytes())
            .and_then(|_| put(caller, size_ptr, &size.to_le_bytes())),
    )
}

/// Reads the `(ptr, len)` pairs of an iovec array.
fn iovecs(caller: &Caller<'_, WapcState>, iovs: i32, count: i32) -> Result<Vec<(i32, i32)>, i32> {
    let count = count as u32 as usize;
    if count > 1024 {
        return Err(EINVAL);
    }
    let raw = read_guest(caller, iovs, (count * 8) as i32, "iovec array").map_err(|_| EFAULT)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect())
}

fn fd_write(caller: &mut Caller<'_, WapcState>, fd: i32, iovs: i32, count: i32, out: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let list = match iovecs(caller, iovs, count) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let mut written: u32 = 0;
    for (ptr, len) in list {
        if len as u32 as usize > MAX_GUEST_BUFFER {
            return EINVAL;
        }
        let Ok(bytes) = read_guest(caller, ptr, len, "output buffer") else {
            return EFAULT;
        };
        written = written.wrapping_add(bytes.len() as u32);
        ctx(caller).pending[(fd - 1) as usize].extend_from_slice(&bytes);
    }
    flush_output(caller.data_mut(), false);
    errno(put(caller, out, &written.to_le_bytes()))
}

fn clock_now(id: i32) -> Option<u64> {
    static BASE: OnceLock<Instant> = OnceLock::new();
    match id {
        // realtime
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as u64),
        // monotonic
        1 => Some(BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64),
        // process and thread CPU time are not offered
        _ => None,
    }
}

/// The preview 1 functions this module implements; the rest get
/// [`define_missing`]'s error answers.
const IMPLEMENTED: [&str; 16] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_seek",
    "proc_exit",
    "sched_yield",
];

/// Adds the implemented WASI functions to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<WapcState>) -> wasmtime::Result<()> {
    // args_* and environ_*: the same two calls over two string lists.
    type Strings = fn(&WasiCtx) -> &Vec<Vec<u8>>;
    let lists: [(&str, &str, Strings); 2] = [
        ("args_get", "args_sizes_get", |w| &w.args),
        ("environ_get", "environ_sizes_get", |w| &w.env),
    ];
    for (get, sizes, list) in lists {
        linker.func_wrap(
            MODULE,
            get,
            move |mut c: Caller<'_, WapcState>, ptrs: i32, buf: i32| {
                put_strings(&mut c, ptrs, buf, list)
            },
        )?;
        linker.func_wrap(
            MODULE,
            sizes,
            move |mut c: Caller<'_, WapcState>, count: i32, size: i32| {
                put_sizes(&mut c, count, size, list)
            },
        )?;
    }
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, WapcState>, id: i32, out: i32| {
            if clock_now(id).is_none() {
                return EINVAL;
            }
            errno(put(&mut c, out, &1_000u64.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, WapcState>, id: i32, _precision: i64, out: i32| match clock_now(id) {
            Some(ns) => errno(put(&mut c, out, &ns.to_le_bytes())),
            None => EINVAL,
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, WapcState>, buf: i32, len: i32| {
            let len = len as u32 as usize;
            if len > MAX_GUEST_BUFFER {
                return EINVAL;
            }
            let mut bytes = vec![0u8; len];
            if getrandom::fill(&mut bytes).is_err() {
                return ENOSYS;
            }
            errno(put(&mut c, buf, &bytes))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, WapcState>, fd: i32, iovs: i32, count: i32, out: i32| {
            fd_write(&mut c, fd, iovs, count, out)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, WapcState>, fd: i32, _iovs: i32, _count: i32, out: i32| {
            // Standard input is empty: every read is at its end.
            if fd != 0 {
                return EBADF;
            }
            errno(put(&mut c, out, &0u32.to_le_bytes()))
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |fd: i32| {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            EBADF
        }
    })?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, WapcState>, fd: i32, out: i32| {
            let rights = match fd {
                0 => RIGHTS_FD_READ,
                1 | 2 => RIGHTS_FD_WRITE,
                _ => return EBADF,
            };
            // struct fdstat { filetype: u8, flags: u16 @2, rights_base: u64 @8,
            // rights_inheriting: u64 @16 }
            let mut stat = [0u8; 24];
            stat[0] = FILETYPE_CHARACTER_DEVICE;
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            errno(put(&mut c, out, &stat))
        },
    )?;
    // No preopened directories: libc's walk over them ends at the first fd.
    linker.func_wrap(MODULE, "fd_prestat_get", |_fd: i32, _out: i32| EBADF)?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_fd: i32, _path: i32, _len: i32| EBADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |fd: i32, _offset: i64, _whence: i32, _out: i32| {
            if (0..=2).contains(&fd) { ESPIPE } else { EBADF }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |mut c: Caller<'_, WapcState>, code: i32| -> wasmtime::Result<()> {
            flush_output(c.data_mut(), true);
            Err(wasmtime::Error::msg(format!(
                "the module exited (proc_exit) with code {code}"
            )))
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", || SUCCESS)?;
    Ok(())
}

/// Gives every WASI import of `module` that [`add_to_linker`] does not
/// implement an answer instead of a link error: `ENOTCAPABLE` for path and
/// socket functions (nothing is mapped), `ENOSYS` for the rest. Imports of
/// other shapes are left alone, so linking reports them by name.
pub(crate) fn define_missing(
    linker: &mut Linker<WapcState>,
    module: &Module,
) -> wasmtime::Result<()> {
    for import in module.imports() {
        if import.module() != MODULE || IMPLEMENTED.contains(&import.name()) {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let results: Vec<ValType> = ty.results().collect();
        if results.len() != 1 || !matches!(results[0], ValType::I32) {
            continue;
        }
        let name = import.name();
        let answer = if name.starts_with("path_") || name.starts_with("sock_") {
            ENOTCAPABLE
        } else {
            ENOSYS
        };
        linker.func_new(MODULE, name, ty, move |_caller, _params, results| {
            results[0] = Val::I32(answer);
            Ok(())
        })?;
    }
    Ok(())
}
