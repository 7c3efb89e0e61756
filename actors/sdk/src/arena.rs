//! A small-footprint allocator for actors that keep nothing on the heap
//! between invocations (enable the SDK's `arena` feature and declare it with
//! [`crate::use_arena_allocator!`]).
//!
//! Allocation bumps a pointer through the heap; freeing the most recent block
//! rolls the pointer back, and once every block is freed (the end of a
//! typical invocation) the heap starts over from its base. An invocation
//! therefore touches the same few pages every time, which is what keeps an
//! idle actor small: dlmalloc spreads its bookkeeping over a fresh 64 KiB
//! segment and leaves more pages dirty.
//!
//! The trade-off: memory is only reused when all of it is free. An actor
//! that holds heap data across invocations (a cache in a static) keeps the
//! heap from starting over, and its memory grows with every invocation.
//! Such actors should keep the default allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

const PAGE: usize = 65536;

/// The arena. wasm32 actors are single-threaded.
pub struct Arena {
    /// First heap byte (0 until first use).
    base: Cell<usize>,
    /// Next free byte.
    top: Cell<usize>,
    /// End of memory.
    end: Cell<usize>,
    /// Blocks allocated and not yet freed.
    live: Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown actors run on one thread; the host never
// enters an instance concurrently.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that starts at the linker's heap base on first use.
    pub const fn new() -> Arena {
        Arena {
            base: Cell::new(0),
            top: Cell::new(0),
            end: Cell::new(0),
            live: Cell::new(0),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn init(&self) {
        unsafe extern "C" {
            static __heap_base: u8;
        }
        // Only the address of the linker-provided symbol is taken.
        let base = core::ptr::addr_of!(__heap_base) as usize;
        self.base.set(base);
        self.top.set(base);
        self.end.set(core::arch::wasm32::memory_size(0) * PAGE);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn init(&self) {}

    /// Makes room up to `needed` by growing memory; false if it cannot.
    fn grow(&self, needed: usize) -> bool {
        #[cfg(target_arch = "wasm32")]
        {
            let pages = (needed - self.end.get()).div_ceil(PAGE);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return false;
            }
            self.end.set(self.end.get() + pages * PAGE);
            true
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = needed;
            false
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: blocks are carved from memory above the heap base that no other
// live block overlaps: `top` only moves past a block when it is handed out
// and only moves back over blocks that are all freed (the last one, or all).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.base.get() == 0 {
            self.init();
        }
        let start = (self.top.get() + layout.align() - 1) & !(layout.align() - 1);
        let Some(next) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if next > self.end.get() && !self.grow(next) {
            return core::ptr::null_mut();
        }
        self.top.set(next);
        self.live.set(self.live.get() + 1);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.top.set(self.base.get());
        } else if ptr as usize + layout.size() == self.top.get() {
            self.top.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The last block grows or shrinks in place.
        if ptr as usize + layout.size() == self.top.get() {
            let Some(next) = (ptr as usize).checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if next <= self.end.get() || self.grow(next) {
                self.top.set(next);
                return ptr;
            }
            return core::ptr::null_mut();
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout
        // (GlobalAlloc's contract for realloc).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block; the old one stays valid until freed below.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the old one holds
            // `layout.size()` initialized bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Makes [`Arena`] the actor's global allocator.
#[macro_export]
macro_rules! use_arena_allocator {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __WASCC_ARENA: $crate::arena::Arena = $crate::arena::Arena::new();
    };
}
