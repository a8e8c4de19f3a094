#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nost_fuzz::entries::jwt_claims(data);
});
