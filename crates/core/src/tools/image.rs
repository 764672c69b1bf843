//! Recognising the image formats models can look at, by their content.
//!
//! The magic bytes decide, not the file name: a screenshot saved as `shot.tmp` is
//! still an image, and a text file named `notes.png` is still text.

/// The media type of `bytes` when they start like a PNG, JPEG, GIF or WebP file.
pub(crate) fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// True when the name ends like an image file (used only to word the message about a
/// file too large to be read, before any of it is read).
pub(crate) fn has_image_extension(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".webp"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic_bytes() {
        assert_eq!(
            image_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(
            image_type(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            Some("image/jpeg")
        );
        assert_eq!(image_type(b"GIF89a\x01\0"), Some("image/gif"));
        assert_eq!(image_type(b"GIF87a"), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(image_type(b"\x89PNG"), None);
        assert_eq!(image_type(b"hello"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn extensions() {
        assert!(has_image_extension("a/Shot.PNG"));
        assert!(has_image_extension("x.jpeg"));
        assert!(!has_image_extension("x.png.txt"));
    }
}
