//! Fault injection (feature `fault-injection`): a party corrupts the payloads of its own
//! protocol messages before signing them, so honest parties receive validly signed garbage and
//! can prove who sent it.

use std::cell::Cell;

thread_local! {
    static CORRUPTING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with payload corruption switched on for this thread when `corrupt` is set.
pub(crate) fn with_corruption<R>(corrupt: bool, f: impl FnOnce() -> R) -> R {
    CORRUPTING.with(|flag| flag.set(corrupt));
    let result = f();
    CORRUPTING.with(|flag| flag.set(false));
    result
}

/// Flips the last byte of a serialized message payload (never of a signature).
pub(crate) fn maybe_corrupt<T>(bytes: &mut [u8]) {
    // Payloads reach the wire format type-erased; signatures arrive as their own type.
    let is_payload = std::any::type_name::<T>().contains("erased_serde");
    if is_payload
        && CORRUPTING.with(Cell::get)
        && let Some(last) = bytes.last_mut()
    {
        *last ^= 0x55;
    }
}
