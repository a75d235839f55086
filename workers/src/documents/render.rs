//! PDFs with typst, in-process. The renderer's world is closed: it serves the one template it
//! is given as `/main.typ`, the document's data as `/data.json`, the clinic's logo as `/logo`
//! and the embedded fonts — nothing else. Any other path or URL a template (or anything in
//! the data) names is refused, never read. A compile runs on a blocking thread, a few at a
//! time, and is abandoned (marked failed) when it runs past its time.

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
    permits: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Renderer {
    /// At most `concurrency` compiles at once, each abandoned after `timeout`.
    pub fn new(concurrency: usize, timeout: Duration) -> Self {
        let mut fonts = FontStore::new();
        fonts.extend(typst_kit::fonts::embedded());
        Self {
            shared: Arc::new(Shared {
                fonts,
                library: LazyHash::new(Library::builder().build()),
            }),
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            timeout,
        }
    }

    /// Compiles `template` with `data` (JSON, read by the template as `/data.json`) and an
    /// optional logo, on a blocking thread. A compile that runs past the timeout is abandoned:
    /// its thread keeps its permit until it ends, so runaway compiles cannot pile up.
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
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            compile(&shared, template, data, logo, created)
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
