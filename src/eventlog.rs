//! The Windows Event Log (Application log, source `awscredd`): what an administrator must see
//! without opening the log file.
//!
//! Code that has something for the Event Log logs it with `target: EVENT_LOG` and an `event_id`
//! field (see [`ids`]); the service's tracing [`Layer`] (Windows only) reports exactly those
//! events, with the level as the event type, and the message and fields as its one string. The
//! event source is registered by `service install` ([`register_source`]) and removed by
//! `service uninstall`; its message file is .NET's `EventLogMessages.dll`, which maps every id
//! to the string itself, so Event Viewer shows the text without a message table of ours.

/// The tracing target of events meant for the Event Log (also written to the log file).
pub(crate) const EVENT_LOG: &str = "awscredd::event_log";

/// The Event Log ids awscredd reports (docs/windows.md).
pub(crate) mod ids {
    /// The service started (the config is loaded and the first pass begins).
    pub(crate) const STARTED: u32 = 1;
    /// The service stopped.
    pub(crate) const STOPPED: u32 = 2;
    /// The config is invalid: the service does not start.
    pub(crate) const CONFIG_ERROR: u32 = 3;
    /// A human must approve an SSO sign-in: the URL and the code.
    pub(crate) const SIGN_IN_NEEDED: u32 = 4;
    /// A profile keeps failing.
    pub(crate) const REPEATED_FAILURES: u32 = 5;
}

#[cfg(windows)]
pub(crate) use imp::*;

#[cfg(windows)]
mod imp {
    use super::EVENT_LOG;
    use std::fmt::Write as _;
    use std::os::windows::ffi::OsStrExt;
    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::layer::Context;
    use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, HANDLE};
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    };
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegCreateKeyExW, RegDeleteKeyW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
        KEY_SET_VALUE, REG_DWORD, REG_EXPAND_SZ, REG_OPTION_NON_VOLATILE,
    };

    /// The event source, as registered under the Application log.
    pub(crate) const SOURCE: &str = "awscredd";
    const KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\awscredd";
    /// .NET Framework 4's message file (on every supported Windows): each id shows as `%1`.
    const MESSAGE_FILE: &str =
        r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

    fn wide(s: &str) -> Vec<u16> {
        std::ffi::OsStr::new(s)
            .encode_wide()
            .chain(Some(0))
            .collect()
    }

    fn win_err(code: u32, what: &str) -> std::io::Error {
        let e = std::io::Error::from_raw_os_error(code as i32);
        std::io::Error::new(e.kind(), format!("{what}: {e}"))
    }

    /// Registers the `awscredd` event source (as Administrator; `service install`).
    pub(crate) fn register_source() -> std::io::Result<()> {
        let key_w = wide(KEY);
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: valid NUL-terminated name, out pointer to a local; the key is closed below.
        let rc = unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                key_w.as_ptr(),
                0,
                std::ptr::null(),
                REG_OPTION_NON_VOLATILE,
                KEY_SET_VALUE,
                std::ptr::null(),
                &mut key,
                std::ptr::null_mut(),
            )
        };
        if rc != ERROR_SUCCESS {
            return Err(win_err(rc, "cannot register the event source"));
        }
        let file = wide(MESSAGE_FILE);
        let types: u32 = 7; // error, warning, information
        let name_file = wide("EventMessageFile");
        let name_types = wide("TypesSupported");
        // SAFETY: `key` is open for setting values; data pointers and lengths (in bytes) match.
        let rc = unsafe {
            let rc = RegSetValueExW(
                key,
                name_file.as_ptr(),
                0,
                REG_EXPAND_SZ,
                file.as_ptr().cast(),
                (file.len() * 2) as u32,
            );
            if rc == ERROR_SUCCESS {
                RegSetValueExW(
                    key,
                    name_types.as_ptr(),
                    0,
                    REG_DWORD,
                    (&types as *const u32).cast(),
                    4,
                )
            } else {
                rc
            }
        };
        // SAFETY: closing the key opened above.
        unsafe { RegCloseKey(key) };
        if rc != ERROR_SUCCESS {
            return Err(win_err(rc, "cannot register the event source"));
        }
        Ok(())
    }

    /// Removes the event source (`service uninstall`); an absent one is fine.
    pub(crate) fn deregister_source() -> std::io::Result<()> {
        let key_w = wide(KEY);
        // SAFETY: valid NUL-terminated name under an open predefined key.
        let rc = unsafe { RegDeleteKeyW(HKEY_LOCAL_MACHINE, key_w.as_ptr()) };
        match rc {
            ERROR_SUCCESS | ERROR_FILE_NOT_FOUND => Ok(()),
            rc => Err(win_err(rc, "cannot remove the event source")),
        }
    }

    /// A tracing layer that reports `target: EVENT_LOG` events to the Event Log.
    pub(crate) struct Layer {
        source: HANDLE,
    }

    // SAFETY: an event source handle may be used from any thread (ReportEventW is thread-safe).
    unsafe impl Send for Layer {}
    // SAFETY: as above; the handle is only read.
    unsafe impl Sync for Layer {}

    impl Layer {
        /// Opens the event source; `None` when the Event Log cannot be reached.
        pub(crate) fn open() -> Option<Layer> {
            let name = wide(SOURCE);
            // SAFETY: NUL-terminated source name on the local computer.
            let source = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
            (!source.is_null()).then_some(Layer { source })
        }

        fn report(&self, level: Level, id: u32, text: &str) {
            let kind = match level {
                Level::ERROR => EVENTLOG_ERROR_TYPE,
                Level::WARN => EVENTLOG_WARNING_TYPE,
                _ => EVENTLOG_INFORMATION_TYPE,
            };
            let text = wide(text);
            let strings = [text.as_ptr()];
            // SAFETY: an open source handle, one NUL-terminated string, no binary data.
            unsafe {
                ReportEventW(
                    self.source,
                    kind,
                    0,
                    id,
                    std::ptr::null_mut(),
                    1,
                    0,
                    strings.as_ptr(),
                    std::ptr::null(),
                );
            }
        }
    }

    impl Drop for Layer {
        fn drop(&mut self) {
            // SAFETY: the handle came from RegisterEventSourceW and is closed once.
            unsafe { DeregisterEventSource(self.source) };
        }
    }

    /// The message, then `key=value` for every other field but `event_id`.
    #[derive(Default)]
    struct Text {
        id: u32,
        message: String,
        fields: String,
    }

    impl Visit for Text {
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "event_id" {
                self.id = u32::try_from(value).unwrap_or(0);
            } else {
                let _ = write!(self.fields, "\r\n{}={value}", field.name());
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            match field.name() {
                "message" => self.message = format!("{value:?}"),
                name => {
                    let _ = write!(self.fields, "\r\n{name}={value:?}");
                }
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "message" => self.message = value.to_string(),
                name => {
                    let _ = write!(self.fields, "\r\n{name}={value}");
                }
            }
        }
    }

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Layer {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if event.metadata().target() != EVENT_LOG {
                return;
            }
            let mut text = Text::default();
            event.record(&mut text);
            self.report(
                *event.metadata().level(),
                text.id,
                &format!("{}{}", text.message, text.fields),
            );
        }
    }
}
