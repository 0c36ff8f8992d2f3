//! A Windows test helper for `packaging/windows/service-test.sh`: holds a file open the way a
//! .NET reader does (`File.ReadAllText`, `StreamReader`: read access, `FILE_SHARE_READ` only, no
//! `FILE_SHARE_DELETE`), so a rename over it fails with a sharing violation meanwhile.
//!
//! `win_hold_file PATH MILLISECONDS READY_FILE`
//!
//! 1. Opens PATH (share read only) and reads it whole.
//! 2. Creates READY_FILE, so the test knows the file is held.
//! 3. Holds the file for MILLISECONDS, then closes it and prints the bytes it read.

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    use std::io::Read;
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ: u32 = 0x1;
    let args: Vec<String> = std::env::args().collect();
    let [_, path, millis, ready] = args.as_slice() else {
        eprintln!("usage: win_hold_file PATH MILLISECONDS READY_FILE");
        return std::process::ExitCode::from(2);
    };
    let Ok(millis) = millis.parse::<u64>() else {
        eprintln!("win_hold_file: `{millis}` is not a number of milliseconds");
        return std::process::ExitCode::from(2);
    };
    let run = || -> std::io::Result<usize> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        std::fs::write(ready, b"held")?;
        std::thread::sleep(std::time::Duration::from_millis(millis));
        drop(file);
        Ok(text.len())
    };
    match run() {
        Ok(n) => {
            println!("held `{path}` ({n} bytes) for {millis} ms");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("win_hold_file: `{path}`: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!("win_hold_file is a Windows test helper (packaging/windows/service-test.sh)");
    std::process::ExitCode::from(2)
}
