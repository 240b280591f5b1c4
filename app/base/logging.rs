//! Logging for the app and the CLI through the `log` facade. Records are
//! filtered by `RUST_LOG` (env_logger's syntax, parsed by `env_filter`; by
//! default our own information and everyone's warnings), printed to stderr
//! as plain lines (what the CLI always printed), and appended, with their
//! time, level and module, to a log file in the data folder that error
//! messages point to.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The log file's name inside `<data folder>/logs`.
pub const LOG_FILE: &str = "unidiff-studio.log";

/// A log file past this size is moved to `<name>.1` (replacing an older
/// one) when the program starts.
const ROTATE_BYTES: u64 = 8 << 20;

/// What is logged when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,unidiff_studio=info";

/// The log file of a data folder.
pub fn log_file_in(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join(LOG_FILE)
}

/// The log file this process writes, once [`init`] opened it.
pub fn log_file() -> Option<&'static Path> {
    let logger = LOGGER.get()?;
    if logger.file_open() {
        logger.file_path.as_deref()
    } else {
        None
    }
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

thread_local! {
    /// Error records of this thread while [`capture_errors`] runs.
    static CAPTURED: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` and returns, with its result, the error records logged on this
/// thread meanwhile (a library that reports a failure only in its log, as
/// rfd does when no file dialog can be shown). Needs the logger of
/// [`init`]; without it the list is empty.
pub fn capture_errors<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let errors = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, errors)
}

struct Logger {
    filter: env_filter::Filter,
    file: Mutex<Option<File>>,
    file_path: Option<PathBuf>,
}

impl Logger {
    fn file_open(&self) -> bool {
        self.file.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    /// Appends one line to the file; a file that cannot be written is
    /// said once on stderr and then left alone.
    fn to_file(&self, level: Level, target: &str, text: &str) {
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        let Some(file) = guard.as_mut() else {
            return;
        };
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let line = format!("{time} {level:<5} {target}: {text}\n");
        if let Err(e) = file.write_all(line.as_bytes()) {
            *guard = None;
            eprintln!(
                "warning: cannot write the log file {}: {e}; logging to the terminal only",
                self.file_path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
    }
}

/// A record as a terminal line: information as it is, the rest with its
/// level (and, below information, where it came from).
pub fn terminal_line(level: Level, target: &str, text: &str) -> String {
    match level {
        Level::Error => format!("error: {text}"),
        Level::Warn => format!("warning: {text}"),
        Level::Info => text.to_string(),
        Level::Debug | Level::Trace => format!("[{level} {target}] {text}"),
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if record.level() == Level::Error {
            CAPTURED.with(|c| {
                if let Ok(mut c) = c.try_borrow_mut()
                    && let Some(list) = c.as_mut()
                {
                    list.push(record.args().to_string());
                }
            });
        }
        if !self.filter.matches(record) {
            return;
        }
        let text = record.args().to_string();
        eprintln!("{}", terminal_line(record.level(), record.target(), &text));
        self.to_file(record.level(), record.target(), &text);
    }

    fn flush(&self) {
        if let Ok(mut guard) = self.file.lock()
            && let Some(f) = guard.as_mut()
        {
            // A failed flush surfaces at the next write, which says so.
            let _ = f.flush();
        }
    }
}

/// Opens (creating) the log file of `data_dir` for appending, moving one
/// past [`ROTATE_BYTES`] aside first.
fn open_log_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the logger (once per process; later calls change nothing) with
/// `RUST_LOG`'s filter or [`DEFAULT_FILTER`], and the log file of
/// `data_dir` when given. Returns the log file when it is being written; a
/// folder that cannot be written is said on stderr and logging goes on
/// there only.
pub fn init(data_dir: Option<&Path>) -> Option<PathBuf> {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_FILTER.to_string());
    let filter = env_filter::Builder::new().parse(&spec).build();
    let file_path = data_dir.map(log_file_in);
    let file = file_path.as_deref().and_then(|p| match open_log_file(p) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!(
                "warning: cannot open the log file {}: {e}; logging to the terminal only",
                p.display()
            );
            None
        }
    });
    let max = filter.filter();
    let logger = LOGGER.get_or_init(|| Logger {
        filter,
        file: Mutex::new(file),
        file_path,
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max.max(LevelFilter::Error));
    }
    log_file().map(Path::to_path_buf)
}

/// Writes `text` into the log file only (what the terminal already shows
/// in another form, such as the final error of a command).
pub fn to_file_only(level: Level, text: &str) {
    if let Some(l) = LOGGER.get() {
        l.to_file(level, "unidiff_studio", text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_lines_keep_information_plain_and_name_the_rest() {
        assert_eq!(
            terminal_line(Level::Info, "x", "[ok] wrote a"),
            "[ok] wrote a"
        );
        assert_eq!(terminal_line(Level::Warn, "x", "slow"), "warning: slow");
        assert_eq!(terminal_line(Level::Error, "x", "gone"), "error: gone");
        assert_eq!(
            terminal_line(Level::Debug, "unidiff_studio::io", "read"),
            "[DEBUG unidiff_studio::io] read"
        );
    }

    #[test]
    fn a_large_log_file_is_moved_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file_in(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'x'; ROTATE_BYTES as usize + 1]).unwrap();
        let mut f = open_log_file(&path).unwrap();
        f.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        let old = dir.path().join("logs").join(format!("{LOG_FILE}.1"));
        assert_eq!(std::fs::metadata(old).unwrap().len(), ROTATE_BYTES + 1);
        // A small one is appended to.
        drop(f);
        let mut f = open_log_file(&path).unwrap();
        f.write_all(b"more\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\nmore\n");
    }

    #[test]
    fn errors_logged_on_this_thread_are_captured_and_no_others() {
        init(None);
        let (value, errors) = capture_errors(|| {
            log::error!(target: "rfd", "no portal, no zenity");
            log::warn!("not an error");
            std::thread::spawn(|| log::error!("another thread"))
                .join()
                .unwrap();
            7
        });
        assert_eq!(value, 7);
        assert_eq!(errors, vec!["no portal, no zenity".to_string()]);
        // Outside a capture nothing is kept.
        log::error!("after");
        assert!(capture_errors(|| ()).1.is_empty());
    }

    #[test]
    fn a_folder_that_cannot_hold_the_log_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // `file/logs` cannot be created under a plain file.
        assert!(open_log_file(&log_file_in(&blocker)).is_err());
    }
}
