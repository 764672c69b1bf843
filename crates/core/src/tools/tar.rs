//! A minimal reader of the tar streams `grep` fetches files with.
//!
//! Understands what GNU tar, bsdtar and busybox tar write for regular files: ustar
//! headers (with the `prefix` field), GNU long names (`L`/`K`), pax extended headers
//! (`x`: `path`, `linkpath`, `size`), hard links (`1`), and several archives
//! concatenated (zero blocks are skipped). Anything else is skipped by its size. A
//! stream cut short ends the listing; the caller knows it was cut.

/// One member of the archive that `grep` cares about.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    /// A regular file and its content.
    File { name: String, data: &'a [u8] },
    /// A hard link to a member stored earlier under `target`.
    HardLink { name: String, target: String },
}

const BLOCK: usize = 512;

/// The members of `buf` (complete ones only).
pub(crate) fn entries(buf: &[u8]) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax_size: Option<usize> = None;
    while pos + BLOCK <= buf.len() {
        let header = &buf[pos..pos + BLOCK];
        pos += BLOCK;
        if header.iter().all(|b| *b == 0) {
            continue;
        }
        let Some(mut size) = parse_size(&header[124..136]) else {
            break;
        };
        if let Some(s) = pax_size.take() {
            size = s;
        }
        let Some(data) = buf.get(pos..pos + size) else {
            break;
        };
        pos += size.div_ceil(BLOCK) * BLOCK;
        let typeflag = header[156];
        match typeflag {
            b'L' => long_name = Some(cstr(data)),
            b'K' => long_link = Some(cstr(data)),
            b'x' => {
                for (key, value) in pax_records(data) {
                    match key {
                        "path" => long_name = Some(value.to_owned()),
                        "linkpath" => long_link = Some(value.to_owned()),
                        "size" => pax_size = value.parse().ok(),
                        _ => {}
                    }
                }
            }
            b'0' | 0 | b'7' | b'1' => {
                let name = clean(long_name.take().unwrap_or_else(|| header_name(header)));
                let link = long_link.take().unwrap_or_else(|| cstr(&header[157..257]));
                if typeflag == b'1' {
                    out.push(Entry::HardLink {
                        name,
                        target: clean(link),
                    });
                } else {
                    out.push(Entry::File { name, data });
                }
            }
            _ => {
                long_name = None;
                long_link = None;
            }
        }
    }
    out
}

/// `name`, or `prefix/name` for POSIX ustar headers.
fn header_name(header: &[u8]) -> String {
    let name = cstr(&header[0..100]);
    if &header[257..263] == b"ustar\0" {
        let prefix = cstr(&header[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// Member names as the caller passed them (tar may keep or add a leading `./`).
fn clean(name: String) -> String {
    match name.strip_prefix("./") {
        Some(rest) => rest.to_owned(),
        None => name,
    }
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Octal ASCII (space or NUL terminated), or GNU base-256 for huge sizes.
fn parse_size(field: &[u8]) -> Option<usize> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return usize::try_from(n).ok();
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(digits, 8).ok()
}

/// Records `"<len> <key>=<value>\n"` of a pax extended header.
fn pax_records(mut data: &[u8]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > data.len() {
            break;
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Ok(text) = std::str::from_utf8(record) {
            if let Some((k, v)) = text.split_once('=') {
                out.push((k, v));
            }
        }
        data = &data[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize, typeflag: u8) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h
    }

    fn member(name: &str, data: &[u8], typeflag: u8) -> Vec<u8> {
        let mut m = header(name, data.len(), typeflag);
        m.extend_from_slice(data);
        m.resize(m.len().div_ceil(BLOCK) * BLOCK, 0);
        m
    }

    #[test]
    fn reads_files_long_names_pax_links_and_concatenation() {
        let long = "d/".repeat(80) + "f.txt";
        let mut buf = member("./a.txt", b"hello\n", b'0');
        buf.extend(member(
            "././@LongLink",
            format!("{long}\0").as_bytes(),
            b'L',
        ));
        buf.extend(member("truncated", b"long\n", b'0'));
        buf.extend(vec![0u8; BLOCK * 2]); // end of a first archive
        let body = " path=p\u{e9} x.txt\n";
        let pax = format!("{}{body}", body.len() + 2);
        buf.extend(member("PaxHeaders/x", pax.as_bytes(), b'x'));
        buf.extend(member("ignored", b"", b'0'));
        let mut link = header("b.txt", 0, b'1');
        link[157..162].copy_from_slice(b"a.txt");
        buf.extend(link);
        buf.extend(member("dir/", b"", b'5'));
        let got = entries(&buf);
        assert_eq!(
            got,
            vec![
                Entry::File {
                    name: "a.txt".into(),
                    data: b"hello\n"
                },
                Entry::File {
                    name: long,
                    data: b"long\n"
                },
                Entry::File {
                    name: "p\u{e9} x.txt".into(),
                    data: b""
                },
                Entry::HardLink {
                    name: "b.txt".into(),
                    target: "a.txt".into()
                },
            ]
        );
    }

    #[test]
    fn a_cut_stream_yields_the_complete_members() {
        let mut buf = member("a", b"1234", b'0');
        buf.extend(member("b", &[b'x'; 2000], b'0'));
        buf.truncate(BLOCK * 3);
        assert_eq!(
            entries(&buf),
            vec![Entry::File {
                name: "a".into(),
                data: b"1234"
            }]
        );
    }

    #[test]
    fn ustar_prefix_is_joined() {
        let mut h = header("name.rs", 0, b'0');
        h[345..348].copy_from_slice(b"src");
        assert_eq!(
            entries(&h),
            vec![Entry::File {
                name: "src/name.rs".into(),
                data: b""
            }]
        );
    }
}
