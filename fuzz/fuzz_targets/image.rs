//! Fuzz target: see [`transfer_workbench_fuzz::Target::Image`]. The app's decoder turns a
//! third-party decoder's panic into an error naming the file, by design; libfuzzer-sys's
//! hook would abort on that caught panic, so this target installs a silent hook. A panic
//! that escapes the decoder still aborts (libfuzzer-sys aborts on any unwind out of a target).
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        let _ = transfer_workbench_fuzz::Target::Image.feed(data);
    }
);
