//! PDFs with typst, in-process. The renderer's world is closed: it serves the one template it
//! is given as `/main.typ`, the document's data as `/data.json`, the clinic's logo as `/logo`
//! and the embedded fonts — nothing else. Any other path or URL a template (or anything in
//! the data) names is refused, never read. A compile runs on one of the renderer's own threads
//! (one per core), which yield the processor to everything else: they run at the lowest
//! priority (`SCHED_BATCH`, nice 19), so a burst of PDFs — statements printed to post for a
//! whole clinic — takes the CPU that requests, webhooks and payments leave, not theirs, and all of
//! it when the machine is otherwise idle. A compile is abandoned (marked failed) when it runs
//! past its time.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_kit::fonts::FontStore;

/// Why a render failed. The messages name typst's diagnostics, never the document's data.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the template did not compile: {0}")]
    Compile(String),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
    #[error("the render ran past {0:?}")]
    Timeout(Duration),
    #[error("the render crashed")]
    Panicked,
    #[error("the render threads could not be started: {0}")]
    Threads(String),
}

/// A rendered document.
#[derive(Debug)]
pub struct Pdf {
    pub bytes: Vec<u8>,
    pub pages: usize,
}

/// The fixed virtual paths of the world. File ids are interned for the life of the process,
/// so these few are made once and reused by every render.
struct Paths {
    main: FileId,
    data: FileId,
    logo: FileId,
}

static PATHS: LazyLock<Option<Paths>> = LazyLock::new(|| {
    let id = |p: &str| {
        VirtualPath::new(p)
            .ok()
            .map(|v| RootedPath::new(VirtualRoot::Project, v).intern())
    };
    Some(Paths {
        main: id("/main.typ")?,
        data: id("/data.json")?,
        logo: id("/logo")?,
    })
});

/// The fonts shipped inside the binary and the standard library, loaded once.
struct Shared {
    fonts: FontStore,
    library: LazyHash<Library>,
}

/// Renders documents; cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    shared: Arc<Shared>,
    threads: Arc<rayon::ThreadPool>,
    permits: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

/// What the render threads are called (`/proc/<pid>/task/*/comm`, `top -H`).
pub const THREAD_NAME: &str = "pdf-render";

/// Lowers the calling thread's priority below everything else the process does. A machine
/// that does not allow it (another OS) renders at normal priority, and says so once a thread.
fn yield_to_requests() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    ) {
        tracing::warn!(error = ?e, "PDF rendering runs at normal priority");
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Renderer {
    /// At most `concurrency` compiles at once (on as many low-priority threads), each
    /// abandoned after `timeout`.
    pub fn new(concurrency: usize, timeout: Duration) -> Result<Self, RenderError> {
        let mut fonts = FontStore::new();
        fonts.extend(typst_kit::fonts::embedded());
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency.max(1))
            .thread_name(|i| format!("{THREAD_NAME}-{i}"))
            .start_handler(|_| yield_to_requests())
            // A compile that panics drops its answer: the caller gets `Panicked`, and the
            // thread goes on (rayon's default is to abort the process).
            .panic_handler(|_| {})
            .build()
            .map_err(|e| RenderError::Threads(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(Shared {
                fonts,
                library: LazyHash::new(Library::builder().build()),
            }),
            threads: Arc::new(threads),
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            timeout,
        })
    }

    /// Compiles `template` with `data` (JSON, read by the template as `/data.json`) and an
    /// optional logo, on a render thread. A compile that runs past the timeout is abandoned:
    /// its thread keeps its permit until it ends, so runaway compiles cannot pile up (and a
    /// permit held means a render thread free, so the timeout does not count time queued
    /// behind other compiles — it does count time the low-priority thread waits for a core
    /// on a machine busy with everything else).
    pub async fn render(
        &self,
        template: &str,
        data: Vec<u8>,
        logo: Option<Vec<u8>>,
        created: chrono::DateTime<chrono::Utc>,
    ) -> Result<Pdf, RenderError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RenderError::Panicked)?;
        let shared = self.shared.clone();
        let template = template.to_owned();
        let (answer, job) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let _permit = permit;
            let _ = answer.send(compile(&shared, template, data, logo, created));
        });
        match tokio::time::timeout(self.timeout, job).await {
            Err(_) => Err(RenderError::Timeout(self.timeout)),
            Ok(Err(_)) => Err(RenderError::Panicked),
            Ok(Ok(result)) => result,
        }
    }
}

struct DocWorld<'a> {
    shared: &'a Shared,
    paths: &'a Paths,
    main: Source,
    data: Bytes,
    logo: Option<Bytes>,
}

impl World for DocWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.shared.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        self.shared.fonts.book()
    }

    fn main(&self) -> FileId {
        self.paths.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.paths.main {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.paths.data {
            Ok(self.data.clone())
        } else if id == self.paths.logo
            && let Some(logo) = &self.logo
        {
            Ok(logo.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.shared.fonts.font(index)
    }

    /// Templates print the time they are given in the data; `datetime.today()` has none.
    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        None
    }
}

fn compile(
    shared: &Shared,
    template: String,
    data: Vec<u8>,
    logo: Option<Vec<u8>>,
    created: chrono::DateTime<chrono::Utc>,
) -> Result<Pdf, RenderError> {
    let paths = PATHS
        .as_ref()
        .ok_or_else(|| RenderError::Compile("the world's paths could not be made".into()))?;
    let world = DocWorld {
        shared,
        paths,
        main: Source::new(paths.main, template),
        data: Bytes::new(data),
        logo: logo.map(Bytes::new),
    };
    let result = typst::compile::<typst_layout::PagedDocument>(&world).output;
    let out = result
        .map_err(|e| RenderError::Compile(messages(&e)))
        .and_then(|doc| {
            use chrono::{Datelike, Timelike};
            let stamp = Datetime::from_ymd_hms(
                created.year(),
                created.month() as u8,
                created.day() as u8,
                created.hour() as u8,
                created.minute() as u8,
                created.second() as u8,
            )
            .map(typst_pdf::Timestamp::new_utc);
            let options = typst_pdf::PdfOptions {
                ident: Smart::Auto,
                timestamp: stamp,
                // Tagged (the default): the structure screen readers follow.
                tagged: true,
                ..Default::default()
            };
            let bytes =
                typst_pdf::pdf(&doc, &options).map_err(|e| RenderError::Pdf(messages(&e)))?;
            Ok(Pdf {
                bytes,
                pages: doc.pages().len(),
            })
        });
    // typst memoizes across compiles in a process-wide cache. What the last ten compiles did
    // not use is dropped after each, so memory stays bounded by recent documents while the
    // fonts and the template's own work stay warm (as typst's watch mode does).
    typst::comemo::evict(10);
    out
}

fn messages(diags: &[SourceDiagnostic]) -> String {
    diags
        .iter()
        .take(3)
        .map(|d| d.message.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
