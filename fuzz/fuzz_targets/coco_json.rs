//! Fuzz target: see [`transfer_workbench_fuzz::Target::CocoJson`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = transfer_workbench_fuzz::Target::CocoJson.feed(data);
});
