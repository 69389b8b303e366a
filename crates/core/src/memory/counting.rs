//! A global-allocator wrapper that keeps the live and peak bytes of large
//! allocations (64 KiB and up: tensors, not strings), so a step's memory can
//! be read exactly, beside the RSS that also holds the allocator's cached and
//! fragmented pages. Small allocations pass straight through, so the hot
//! paths of tokenisation pay nothing; a large one pays two relaxed atomics.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const LARGE: usize = 64 << 10;
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Wraps the allocator `A` (`#[global_allocator] static A: Counting<Jemalloc>`).
pub struct Counting<A>(pub A);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes as u64, Relaxed) + bytes as u64;
    PEAK.fetch_max(now, Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes as u64, Relaxed);
}

// SAFETY: every call forwards to `A` unchanged; the counters only observe.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() && layout.size() >= LARGE {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() && layout.size() >= LARGE {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        if layout.size() >= LARGE {
            shrank(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if layout.size() >= LARGE {
                shrank(layout.size());
            }
            if new_size >= LARGE {
                grew(new_size);
            }
        }
        p
    }
}

/// Live bytes in large allocations, and their peak since the last reset.
/// Both stay 0 in a binary whose global allocator is not `Counting`.
pub fn live_and_peak() -> (u64, u64) {
    (LIVE.load(Relaxed), PEAK.load(Relaxed))
}

/// Starts a new peak from the bytes live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}
