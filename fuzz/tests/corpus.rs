//! Replays the seed corpus, libFuzzer's working corpus and any crash artifacts through the
//! target's properties on the stable toolchain, without fuzzing instrumentation:
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml
//! X402_FUZZ_INPUT=fuzz/artifacts/payment_header/crash-… cargo test --manifest-path fuzz/Cargo.toml
//! ```

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_input_holds_the_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs: Vec<PathBuf> = match std::env::var_os("X402_FUZZ_INPUT") {
        Some(one) => vec![PathBuf::from(one)],
        None => ["corpus", "corpus-local", "artifacts"]
            .iter()
            .flat_map(|dir| files(&root.join(dir).join("payment_header")))
            .collect(),
    };
    assert!(!inputs.is_empty(), "no inputs found");
    for input in &inputs {
        // A running fuzzer may replace files of its working corpus meanwhile.
        let Ok(data) = std::fs::read(input) else {
            continue;
        };
        eprintln!("{}", input.display());
        x402_fuzz::check(&data);
    }
    eprintln!("{} inputs hold", inputs.len());
}
