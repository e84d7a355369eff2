//! A failed allocation that the standard library cannot report as an error.
//!
//! Rust's collections abort the process when an allocation fails (`handle_alloc_error`: the
//! line "memory allocation of N bytes failed", then SIGABRT, exit status 134), and stable Rust
//! offers no hook to turn that into an error. [`ReportingAllocator`] wraps an allocator and
//! remembers the size of the last failed request; [`install_abort_report`] installs a
//! SIGABRT handler that, when an allocation failed before the abort, prints what happened and
//! what helps and exits with status 1 (the status of every other out-of-memory error) instead
//! of dumping core. Aborts of any other cause keep their default behaviour.
//!
//! Failures that a library turns into a panic (faer's matrices) are caught by the run and
//! reported as [`crate::Error::OutOfMemory`] with the run directory removed; this is the last
//! resort for the rest, which leaves the run directory marked `INCOMPLETE`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the last allocation request the system refused (0: none).
static FAILED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// An allocator `A` (the system's, or mimalloc), remembering the size of a refused request for
/// [`install_abort_report`].
pub struct ReportingAllocator<A>(pub A);

fn note(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        FAILED_BYTES.store(size.max(1), Ordering::SeqCst);
    }
    p
}

// SAFETY: every method forwards to the inner allocator with the caller's arguments unchanged and returns
// its result; the only addition is an atomic store.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ReportingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        note(unsafe { self.0.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        note(unsafe { self.0.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        note(unsafe { self.0.realloc(ptr, layout, new_size) }, new_size)
    }
}

/// Writes `n` in decimal into `buf`, returning the digits (no allocation: runs in a signal
/// handler).
fn decimal(mut n: usize, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

fn write_stderr(bytes: &[u8]) {
    // SAFETY: writes a valid buffer to file descriptor 2; async-signal-safe.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
    }
}

extern "C" fn on_abort(_signal: libc::c_int) {
    let bytes = FAILED_BYTES.load(Ordering::SeqCst);
    if bytes == 0 {
        // Not ours: the default action (core dump, status 134).
        // SAFETY: resetting a signal's disposition and raising it are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            libc::raise(libc::SIGABRT);
        }
        return;
    }
    let mut buf = [0u8; 24];
    write_stderr(b"error: out of memory: an allocation of ");
    write_stderr(decimal(bytes, &mut buf));
    write_stderr(
        b" bytes failed (the memory estimate was exceeded, or overridden with --force). \
          Run `experiment CONFIG --estimate` to see the footprint, and reduce the largest part \
          (fewer points, a smaller width or depth, kernel.solver = \"iterative\", fewer \
          checkpoints). A run directory created before the failure is left marked INCOMPLETE.\n",
    );
    // SAFETY: `_exit` is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(1) }
}

/// Installs the SIGABRT handler that reports an allocation failure (see the module docs).
/// Meant for a binary whose `#[global_allocator]` is [`ReportingAllocator`].
pub fn install_abort_report() {
    let handler: extern "C" fn(libc::c_int) = on_abort;
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGABRT, handler as libc::sighandler_t);
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_writes_the_digits_of_a_size() {
        let mut buf = [0u8; 24];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(128_000_000_000, &mut buf), b"128000000000");
        assert_eq!(
            decimal(usize::MAX, &mut buf),
            usize::MAX.to_string().as_bytes()
        );
    }
}
