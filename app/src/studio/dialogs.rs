//! File dialogs that never block the UI thread. A view asks [`Dialogs::open`] for a dialog
//! with what it is for ([`DialogPurpose`]) and what it shows ([`DialogSpec`]); the blocking
//! `rfd` call runs on a "file-dialog" thread and the answer comes back over a channel. The app
//! polls it once per frame ([`Dialogs::poll`]) and does what the purpose says with the path.
//! At most one dialog is open at a time: a second request while one is open is refused, so a
//! double click does not stack dialogs.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};

use hitvideo_engine::video::{ExportFormat, ExportMetadata, Video};

/// Extensions offered by the "Open video…" dialogs.
pub const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "mov", "mkv", "webm", "avi", "gif"];

/// What a file dialog chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    /// An existing file.
    PickFile,
    /// An existing folder.
    PickFolder,
    /// A file to write (it may not exist yet).
    SaveFile,
}

/// A filter of the files offered: its name and the extensions it lets through (no dots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFilter {
    pub name: String,
    pub extensions: Vec<String>,
}

/// What a file dialog shows: its kind, title, filters, proposed file name and the folder it
/// starts in. Built with [`DialogSpec::pick_file`] (or `pick_folder`, `save_file`) and the
/// setters below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogSpec {
    pub kind: DialogKind,
    pub title: Option<String>,
    pub filters: Vec<FileFilter>,
    pub file_name: Option<String>,
    pub directory: Option<PathBuf>,
}

impl DialogSpec {
    fn of(kind: DialogKind) -> Self {
        Self { kind, title: None, filters: Vec::new(), file_name: None, directory: None }
    }

    /// A dialog choosing an existing file.
    pub fn pick_file() -> Self {
        Self::of(DialogKind::PickFile)
    }

    /// A dialog choosing a folder.
    pub fn pick_folder() -> Self {
        Self::of(DialogKind::PickFolder)
    }

    /// A dialog choosing where to write a file.
    pub fn save_file() -> Self {
        Self::of(DialogKind::SaveFile)
    }

    /// A dialog choosing a video file (the extensions of [`VIDEO_EXTENSIONS`]).
    pub fn open_video() -> Self {
        Self::pick_file().filter("video", &VIDEO_EXTENSIONS)
    }

    /// The window title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds a filter named `name` letting `extensions` through.
    pub fn filter(mut self, name: impl Into<String>, extensions: &[&str]) -> Self {
        self.filters.push(FileFilter { name: name.into(), extensions: extensions.iter().map(|e| (*e).to_string()).collect() });
        self
    }

    /// The file name proposed.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// The folder the dialog starts in.
    pub fn directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.directory = Some(dir.into());
        self
    }

    /// Shows the system's dialog (`rfd`) and waits for the user: call it off the UI thread.
    pub fn show_native(self) -> Option<PathBuf> {
        let mut d = rfd::FileDialog::new();
        if let Some(title) = self.title {
            d = d.set_title(title);
        }
        for f in &self.filters {
            d = d.add_filter(f.name.clone(), f.extensions.as_slice());
        }
        if let Some(name) = self.file_name {
            d = d.set_file_name(name);
        }
        if let Some(dir) = self.directory {
            d = d.set_directory(dir);
        }
        match self.kind {
            DialogKind::PickFile => d.pick_file(),
            DialogKind::PickFolder => d.pick_folder(),
            DialogKind::SaveFile => d.save_file(),
        }
    }
}

/// What to do with the path a dialog returns: one variant per button that opens a dialog.
/// Variants carry what the button knew when it was clicked (the clip to export and its
/// metadata). The app's dispatcher (`StudioApp::on_dialog`) does the work.
#[derive(Debug, Clone, PartialEq)]
pub enum DialogPurpose {
    /// File › Open video…: play the file in the Data view.
    MenuOpenVideo,
    /// File › Open exported file…: restore its settings in the Generate view, re-roll it.
    MenuOpenExport,
    /// The Data view's "Open video…": play the file.
    DataOpenVideo,
    /// The Tokens view's "Open video…": tokenize the file.
    TokensOpenVideo,
    /// "Open tokenizer…" (the models row): load the checkpoint folder.
    LoadTokenizer,
    /// "Open generator…" (the models row): load the checkpoint folder.
    LoadGenerator,
    /// The Generate view's "Open exported file…".
    GenerateOpenExport,
    /// "Export MP4…" / "Export GIF…" / "Export PNG frames…": write `video` in `format`.
    SaveExport { video: Arc<Video>, meta: Box<ExportMetadata>, format: ExportFormat, scale: u32 },
    /// The Sweep view's "Export grid…": write the tiled grid as MP4.
    SaveSweep { video: Arc<Video>, meta: Box<ExportMetadata> },
    /// The Train form's "Tokenizer…": the tokenizer a generator run learns from.
    TrainTokenizer,
    /// The Train form's "Import folder…": the dataset folder.
    TrainDataset,
    /// The Train view's "Open run…": open a run from an earlier session, paused.
    OpenRun,
    /// The gallery's "Outputs folder…": where generated clips are saved and listed.
    OutputsFolder,
}

/// A dialog's answer: what it was for and the path chosen (`None`: cancelled).
pub type DialogAnswer = (DialogPurpose, Option<PathBuf>);

/// Shows a dialog and waits for the answer (runs on the dialog thread).
type Opener = Arc<dyn Fn(DialogSpec) -> Option<PathBuf> + Send + Sync>;

/// The non-blocking file-dialog service: at most one dialog open, its answer polled per frame.
pub struct Dialogs {
    opener: Opener,
    /// The open dialog's answer, when one is open.
    pending: Option<mpsc::Receiver<DialogAnswer>>,
}

impl Default for Dialogs {
    fn default() -> Self {
        Self::new()
    }
}

impl Dialogs {
    /// The system's dialogs ([`DialogSpec::show_native`]).
    pub fn new() -> Self {
        Self::with_opener(DialogSpec::show_native)
    }

    /// Dialogs answered by `opener` instead of the system's (tests answer them without a
    /// window system). It runs on the dialog thread and may block.
    pub fn with_opener(opener: impl Fn(DialogSpec) -> Option<PathBuf> + Send + Sync + 'static) -> Self {
        Self { opener: Arc::new(opener), pending: None }
    }

    /// Whether a dialog is open (its answer not yet polled).
    pub fn is_open(&self) -> bool {
        self.pending.is_some()
    }

    /// Opens a dialog on its own thread; its answer comes from [`Self::poll`]. Refused (false)
    /// while another dialog is open or when the thread cannot start.
    pub fn open(&mut self, purpose: DialogPurpose, spec: DialogSpec) -> bool {
        if self.is_open() {
            return false;
        }
        let (tx, rx) = mpsc::channel();
        let opener = Arc::clone(&self.opener);
        let spawned = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let path = opener(spec);
            // The app may have closed meanwhile: nobody is left to tell.
            let _ = tx.send((purpose, path));
        });
        match spawned {
            Ok(_) => {
                self.pending = Some(rx);
                true
            }
            Err(e) => {
                tracing::warn!("could not start the file-dialog thread: {e}");
                false
            }
        }
    }

    /// The open dialog's answer once the user has chosen (never waits). A dialog whose thread
    /// died (a panic in the system dialog) counts as closed, with no answer.
    pub fn poll(&mut self) -> Option<DialogAnswer> {
        let rx = self.pending.as_ref()?;
        match rx.try_recv() {
            Ok(answer) => {
                self.pending = None;
                Some(answer)
            }
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.pending = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls until an answer comes (at most 10 s).
    fn answer(d: &mut Dialogs) -> DialogAnswer {
        let t0 = Instant::now();
        loop {
            if let Some(a) = d.poll() {
                return a;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no answer from the dialog thread");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn one_dialog_at_a_time_and_its_answer_is_polled() {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let mut d = Dialogs::with_opener(move |spec| {
            seen.lock().expect("lock").push(spec);
            // The user takes their time: the dialog stays open until the test answers.
            let _ = gate.lock().expect("lock").recv_timeout(Duration::from_secs(30));
            Some(PathBuf::from("/videos/a.mp4"))
        });
        assert!(!d.is_open());
        assert_eq!(d.poll(), None);
        assert!(d.open(DialogPurpose::TokensOpenVideo, DialogSpec::open_video()));
        assert!(d.is_open());
        assert!(!d.open(DialogPurpose::LoadTokenizer, DialogSpec::pick_folder()), "a second dialog while one is open");
        assert_eq!(d.poll(), None, "an answer before the user chose");
        release.send(()).expect("the dialog thread waits");
        assert_eq!(answer(&mut d), (DialogPurpose::TokensOpenVideo, Some(PathBuf::from("/videos/a.mp4"))));
        assert!(!d.is_open());
        assert_eq!(d.poll(), None, "an answer is given once");
        let asked = asked.lock().expect("lock").clone();
        assert_eq!(asked.len(), 1, "the refused dialog was shown: {asked:?}");
        assert_eq!(asked[0].kind, DialogKind::PickFile);
        assert_eq!(asked[0].filters, vec![FileFilter { name: "video".into(), extensions: VIDEO_EXTENSIONS.map(String::from).to_vec() }]);
    }

    #[test]
    fn a_cancelled_dialog_answers_none_and_frees_the_service() {
        let mut d = Dialogs::with_opener(|_| None);
        assert!(d.open(DialogPurpose::OpenRun, DialogSpec::pick_folder().title("run").directory("/runs")));
        assert_eq!(answer(&mut d), (DialogPurpose::OpenRun, None));
        assert!(d.open(DialogPurpose::TrainDataset, DialogSpec::pick_folder()), "closed dialogs do not block new ones");
        assert_eq!(answer(&mut d), (DialogPurpose::TrainDataset, None));
    }

    #[test]
    fn a_dialog_thread_that_dies_closes_the_dialog() {
        let mut d = Dialogs::with_opener(|_| panic!("no window system"));
        assert!(d.open(DialogPurpose::LoadGenerator, DialogSpec::pick_folder()));
        let t0 = Instant::now();
        while d.is_open() {
            assert_eq!(d.poll(), None);
            assert!(t0.elapsed() < Duration::from_secs(10), "the dialog stays open");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
