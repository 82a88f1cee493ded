//! The global allocator: mimalloc, asked the way its own `malloc` is asked.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`. In mimalloc 3
//! that call takes its fast path only up to 1 KiB; a larger block with the ordinary alignment of
//! 8 is over-allocated and aligned by hand, which marks its page as holding interior pointers and
//! slows every later free on that page. The batch engine's merge plans are such blocks, one or
//! two per record. Like the standard library's `System` allocator, this one asks for plain
//! `mi_malloc` whenever that already guarantees the alignment.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_long, c_void};
use libmimalloc_sys as ffi;

/// Every block `mi_malloc` returns of at least this size is aligned to it (mimalloc's
/// `MI_MAX_ALIGN_SIZE`); smaller blocks are aligned to their size class, a multiple of 8.
const MALLOC_ALIGN: usize = 16;

/// Whether plain `mi_malloc(size)` meets `align`.
fn malloc_meets(size: usize, align: usize) -> bool {
    align <= 8 || (align <= MALLOC_ALIGN && align <= size)
}

pub struct Mimalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc 3's `mimalloc.h`).
const PURGE_DELAY: c_int = 15;
/// mimalloc's `mi_option_page_full_retain`, likewise.
const PAGE_FULL_RETAIN: c_int = 36;
/// The most full pages per size class mimalloc lets a thread keep (it clamps the option to this).
const FULL_PAGES_KEPT: c_long = 32;

extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// Tunes mimalloc for a batch run; call before starting the threads that do the work (a thread
/// reads the options when it first allocates).
///
/// - Freed memory is kept for reuse instead of being handed back to the OS a second later. A
///   batch run only grows; memory handed back and taken again comes back zeroed by the kernel,
///   which took a few per cent of `mdm dedupe`'s CPU time (docs/benchmarks.md).
/// - A thread keeps up to 32 full pages per size class instead of 2. mimalloc 3 hands a full
///   page to its shared arena; every later free on that page then takes the slow path that
///   reclaims it. The batch engine frees most of what it allocates per record soon after, so
///   with the default 2 pages it handed over and reclaimed pages about 3.5 times per record.
pub fn tune_for_batch() {
    // SAFETY: plain FFI calls on mimalloc's option table; any value is valid for these options.
    unsafe {
        mi_option_set(PURGE_DELAY, -1);
        mi_option_set(PAGE_FULL_RETAIN, FULL_PAGES_KEPT);
    }
}

/// An option's value in force.
#[cfg(test)]
fn option(option: c_int) -> c_long {
    // SAFETY: a plain FFI read of mimalloc's option table.
    unsafe { mi_option_get(option) }
}

// SAFETY: every block comes from mimalloc and goes back to it through `mi_free` (which takes
// aligned and unaligned blocks alike); a block is aligned as its layout asks, by `mi_malloc`'s
// guarantee (see `malloc_meets`) or by the aligned call.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; mimalloc accepts any size and a power-of-two alignment.
        unsafe {
            if malloc_meets(layout.size(), layout.align()) {
                ffi::mi_malloc(layout.size()).cast()
            } else {
                ffi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if malloc_meets(layout.size(), layout.align()) {
                ffi::mi_zalloc(layout.size()).cast()
            } else {
                ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its alignment.
        unsafe {
            if malloc_meets(new_size, layout.align()) {
                ffi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_tuning_sets_the_options_it_names() {
        // mimalloc 3's defaults for the options at these positions (1000 ms; 2 pages) name them.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(option(PURGE_DELAY), 1000, "mi_option_purge_delay moved in mimalloc's option list");
        }
        if std::env::var_os("MIMALLOC_PAGE_FULL_RETAIN").is_none() {
            assert_eq!(option(PAGE_FULL_RETAIN), 2, "mi_option_page_full_retain moved in mimalloc's option list");
        }
        tune_for_batch();
        assert_eq!(option(PURGE_DELAY), -1);
        assert_eq!(option(PAGE_FULL_RETAIN), FULL_PAGES_KEPT);
    }

    #[test]
    fn blocks_are_aligned_as_their_layouts_ask() {
        let a = Mimalloc;
        for size in [1usize, 7, 8, 15, 16, 24, 100, 1000, 1025, 1500, 4000, 70_000, 3 << 20] {
            for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
                let Ok(layout) = Layout::from_size_align(size, align) else { continue };
                // SAFETY: a non-zero size; the block is freed with the same layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 2 + 1);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert_eq!(*q.add(size - 1), 0xa5, "realloc keeps the contents");
                    a.dealloc(q, Layout::from_size_align(size * 2 + 1, align).unwrap_or(layout));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
