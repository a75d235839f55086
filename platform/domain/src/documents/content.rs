//! What an uploaded file really is, found from its bytes (never its name or the type the
//! browser declared): a PDF, a JPEG or a PNG, whole, and no larger than the limit. Anything
//! else is refused with words that say what was found.

/// The largest upload taken (10 MB).
pub const MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// A type documents may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    Jpeg,
    Png,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
        }
    }

    pub fn parse(raw: &str) -> Option<MediaType> {
        [MediaType::Pdf, MediaType::Jpeg, MediaType::Png]
            .into_iter()
            .find(|m| m.as_str() == raw)
    }

    /// The file name's extension when it is downloaded.
    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Pdf => "pdf",
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
        }
    }
}

/// Why an upload was refused; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("The file is empty. Choose the file again.")]
    Empty,
    #[error(
        "The file is larger than 10 MB. Choose a smaller file, or take the photo again at a lower size."
    )]
    TooLarge,
    #[error("The file must be a PDF, JPEG or PNG. This file is {0}.")]
    NotAllowed(&'static str),
    #[error(
        "The file looks like a {0} but is damaged or incomplete. Save or scan it again and choose it again."
    )]
    Damaged(&'static str),
}

/// The file's type, when it is one documents may have and looks whole.
pub fn check(bytes: &[u8]) -> Result<MediaType, ContentError> {
    if bytes.is_empty() {
        return Err(ContentError::Empty);
    }
    if bytes.len() > MAX_UPLOAD {
        return Err(ContentError::TooLarge);
    }
    let found = infer::get(bytes);
    let media = match found.map(|t| t.mime_type()) {
        Some("application/pdf") => MediaType::Pdf,
        Some("image/jpeg") => MediaType::Jpeg,
        Some("image/png") => MediaType::Png,
        _ => return Err(ContentError::NotAllowed(describe(found))),
    };
    if whole(media, bytes) {
        Ok(media)
    } else {
        Err(ContentError::Damaged(match media {
            MediaType::Pdf => "PDF",
            MediaType::Jpeg => "JPEG photo",
            MediaType::Png => "PNG picture",
        }))
    }
}

/// What a refused file is, in plain words.
fn describe(found: Option<infer::Type>) -> &'static str {
    use infer::MatcherType as M;
    let Some(t) = found else {
        return "not a kind of file we can take";
    };
    match (t.matcher_type(), t.mime_type()) {
        (_, "text/html") => "a web page",
        (M::App, _) => "a program",
        (M::Archive, _) => "an archive (such as a zip file)",
        (M::Doc | M::Book, _) => "an office document; save it as a PDF first",
        (M::Image, _) => "a kind of picture we cannot take; save it as a JPEG or PNG",
        (M::Audio | M::Video, _) => "a sound or video file",
        _ => "not a kind of file we can take",
    }
}

/// Whether the file ends as its format says a whole file ends: a PDF's `%%EOF` marker near
/// the end, a JPEG's end-of-image marker, a PNG's `IEND` chunk. A cut-off transfer or a
/// truncated scan fails here instead of becoming a document nobody can open.
fn whole(media: MediaType, bytes: &[u8]) -> bool {
    let tail = |n: usize| &bytes[bytes.len().saturating_sub(n)..];
    match media {
        MediaType::Pdf => tail(1024).windows(5).any(|w| w == b"%%EOF"),
        MediaType::Jpeg => {
            let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            end >= 4 && bytes[end - 2..end] == [0xFF, 0xD9]
        }
        MediaType::Png => {
            bytes.len() >= 57
                && tail(12) == [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 13, b'I', b'D', b'A',
        b'T', 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0, b'I',
        b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn whole_files_of_the_three_types_pass() {
        assert_eq!(check(PNG), Ok(MediaType::Png));
        let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
        assert_eq!(check(pdf), Ok(MediaType::Pdf));
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
        ];
        assert_eq!(check(&jpeg), Ok(MediaType::Jpeg));
    }

    #[test]
    fn disguised_damaged_empty_and_oversized_files_are_refused() {
        // An ELF program, whatever its name says.
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        elf.resize(64, 0);
        assert_eq!(check(&elf), Err(ContentError::NotAllowed("a program")));
        // A Windows program.
        let mut exe = b"MZ\x90\0\x03\0\0\0".to_vec();
        exe.resize(64, 0);
        assert_eq!(check(&exe), Err(ContentError::NotAllowed("a program")));
        let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
        assert_eq!(check(html), Err(ContentError::NotAllowed("a web page")));
        assert_eq!(check(&PNG[..40]), Err(ContentError::Damaged("PNG picture")));
        assert_eq!(
            check(b"%PDF-1.7\n1 0 obj <<"),
            Err(ContentError::Damaged("PDF"))
        );
        assert_eq!(check(b""), Err(ContentError::Empty));
        let mut big = b"%PDF-1.7\n".to_vec();
        big.resize(MAX_UPLOAD + 1, b' ');
        assert_eq!(check(&big), Err(ContentError::TooLarge));
    }
}
