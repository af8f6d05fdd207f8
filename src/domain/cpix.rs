//! CPIX 2.3 key exchange documents [extension], as packagers send them
//! over SPEKE v2: read which content and key ids a request asks for, then
//! answer the same document with every `ContentKey` filled and a PSSH box
//! for each ClearKey `DRMSystem`. Other DRM systems come back unchanged:
//! their signalling needs the upstream vendor's data.

use std::collections::HashMap;
use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, Writer};

use super::ids::{ContentId, ContentKey, Kid};

/// The CPIX namespace.
const CPIX_NS: &[u8] = b"urn:dashif:org:cpix";
/// The PSKC namespace that holds key values.
const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// DASH-IF's system id for W3C ClearKey.
const CLEARKEY_SYSTEM_ID: [u8; 16] = [0xe1; 16];

/// Why a document is not a CPIX request the service can answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid CPIX document: {0}")]
pub struct CpixError(String);

fn invalid(reason: impl Into<String>) -> CpixError {
    CpixError(reason.into())
}

/// What a CPIX request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct CpixRequest {
    /// The root's `contentId`.
    pub content_id: ContentId,
    /// The `kid` of every `ContentKey`, in document order, without repeats.
    pub kids: Vec<Kid>,
}

impl CpixRequest {
    /// Reads and checks the request: a `CPIX` root in the CPIX namespace
    /// with a valid `contentId`, at least one `ContentKey`, every one with
    /// a `kid`, and every `DRMSystem` naming one of those kids.
    pub fn parse(document: &[u8]) -> Result<Self, CpixError> {
        let mut reader = NsReader::from_reader(document);
        let mut content_id = None;
        let mut kids = Vec::new();
        let mut drm_kids = Vec::new();
        let mut depth = 0usize;
        loop {
            let (namespace, event) = reader
                .read_resolved_event()
                .map_err(|error| invalid(format!("not well-formed XML ({error})")))?;
            let element = match &event {
                Event::Start(element) | Event::Empty(element) => element,
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    continue;
                }
                Event::Eof if depth > 0 => {
                    return Err(invalid(
                        "the document ends before its root element is closed",
                    ))
                }
                Event::Eof => break,
                _ => continue,
            };
            if depth == 0 && content_id.is_some() {
                return Err(invalid("the document has more than one root element"));
            }
            if matches!(event, Event::Start(_)) {
                depth += 1;
            }
            let is_cpix = namespace == ResolveResult::Bound(Namespace(CPIX_NS));
            match (is_cpix, element.local_name().as_ref(), &content_id) {
                (true, b"CPIX", None) => content_id = Some(root_content_id(element)?),
                (_, _, None) => {
                    return Err(invalid("the root must be CPIX in urn:dashif:org:cpix"))
                }
                (true, b"ContentKey", _) => {
                    let kid = kid_of(element, "ContentKey")?;
                    if !kids.contains(&kid) {
                        kids.push(kid);
                    }
                }
                (true, b"DRMSystem", _) => drm_kids.push(kid_of(element, "DRMSystem")?),
                _ => {}
            }
        }
        let Some(content_id) = content_id else {
            return Err(match document.trim_ascii().is_empty() {
                true => invalid("the document is empty"),
                false => invalid("the document is not XML: it holds no element"),
            });
        };
        if kids.is_empty() {
            return Err(invalid("ContentKeyList holds no ContentKey"));
        }
        if let Some(stray) = drm_kids.iter().find(|kid| !kids.contains(kid)) {
            return Err(invalid(format!(
                "DRMSystem kid {} names no ContentKey",
                uuid_text(stray)
            )));
        }
        Ok(Self { content_id, kids })
    }
}

fn root_content_id(element: &BytesStart) -> Result<ContentId, CpixError> {
    let text = attribute(element, "contentId")?
        .ok_or_else(|| invalid("CPIX has no contentId attribute"))?;
    ContentId::parse(&text)
        .ok_or_else(|| invalid("contentId must be 3 to 100 letters, digits, '-' or '_'"))
}

fn kid_of(element: &BytesStart, what: &str) -> Result<Kid, CpixError> {
    let text = attribute(element, "kid")?
        .ok_or_else(|| invalid(format!("a {what} has no kid attribute")))?;
    let not_uuid = || invalid(format!("{what} kid {text:?} is not a UUID with dashes"));
    if !is_dashed_uuid(&text) {
        return Err(not_uuid());
    }
    Kid::from_hex(&text).ok_or_else(not_uuid)
}

/// CPIX writes a kid as a UUID in its dashed 8-4-4-4-12 form; 32 bare hex
/// digits are refused.
fn is_dashed_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The trimmed value of attribute `name`; an attribute that cannot be read
/// (bad syntax, an undeclared entity, bytes that are not UTF-8) is an error
/// naming it, not a missing one.
fn attribute(element: &BytesStart, name: &str) -> Result<Option<String>, CpixError> {
    let unreadable = |error: &dyn std::fmt::Display| {
        invalid(format!("attribute {name} cannot be read ({error})"))
    };
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|error| unreadable(&error))?;
        if attribute.key.as_ref() != name.as_bytes() {
            continue;
        }
        let value = attribute
            .decode_and_unescape_value(element.decoder())
            .map_err(|error| unreadable(&error))?;
        return Ok(Some(value.trim().to_owned()));
    }
    Ok(None)
}

/// A kid as CPIX writes it: a UUID with dashes.
fn uuid_text(kid: &Kid) -> String {
    uuid::Uuid::from_bytes(kid.0).to_string()
}

/// The request document with every `ContentKey` holding its key from
/// `keys` and every ClearKey `DRMSystem` holding a PSSH box; everything
/// else is written back as it came. The document must have passed
/// [`CpixRequest::parse`], and `keys` must hold each of its kids.
pub fn fill(document: &[u8], keys: &HashMap<Kid, ContentKey>) -> Result<Vec<u8>, CpixError> {
    let mut reader = NsReader::from_reader(document);
    let mut writer = Writer::new(Vec::with_capacity(document.len() * 2));
    let mut skipping = 0usize;
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|error| invalid(format!("not well-formed XML ({error})")))?;
        if skipping > 0 {
            // Inside a filled element: its old children give way to ours.
            match event {
                Event::Start(_) => skipping += 1,
                Event::End(_) => skipping -= 1,
                _ => {}
            }
            if skipping > 0 {
                continue;
            }
        }
        let is_cpix = namespace == ResolveResult::Bound(Namespace(CPIX_NS));
        let opened = match &event {
            Event::Eof => break,
            Event::Start(element) if is_cpix => Some((element.clone().into_owned(), true)),
            Event::Empty(element) if is_cpix => Some((element.clone().into_owned(), false)),
            _ => None,
        };
        let filled = match opened {
            Some((element, has_children)) => {
                filling_of(&element, keys)?.map(|content| (element, has_children, content))
            }
            None => None,
        };
        let Some((element, has_children, content)) = filled else {
            writer.write_event(event).map_err(write_failed)?;
            continue;
        };
        let end = element.to_end().into_owned();
        writer
            .write_event(Event::Start(element))
            .map_err(write_failed)?;
        writer
            .get_mut()
            .write_all(content.as_bytes())
            .map_err(write_failed)?;
        match has_children {
            true => skipping = 1,
            false => writer.write_event(Event::End(end)).map_err(write_failed)?,
        }
    }
    Ok(writer.into_inner())
}

/// The children a CPIX element gets: a key for a `ContentKey`, a PSSH box
/// for a ClearKey `DRMSystem`, none for anything else.
fn filling_of(
    element: &BytesStart,
    keys: &HashMap<Kid, ContentKey>,
) -> Result<Option<String>, CpixError> {
    let prefix = match element.name().prefix() {
        Some(prefix) => format!("{}:", String::from_utf8_lossy(prefix.as_ref())),
        None => String::new(),
    };
    match element.local_name().as_ref() {
        b"ContentKey" => {
            let kid = kid_of(element, "ContentKey")?;
            let key = keys
                .get(&kid)
                .ok_or_else(|| invalid(format!("no key for kid {}", uuid_text(&kid))))?;
            let value = STANDARD.encode(key.0);
            Ok(Some(format!(
                "<{prefix}Data><pskc:Secret xmlns:pskc=\"{PSKC_NS}\"><pskc:PlainValue>{value}</pskc:PlainValue></pskc:Secret></{prefix}Data>"
            )))
        }
        b"DRMSystem" => {
            let system =
                attribute(element, "systemId")?.and_then(|text| uuid::Uuid::parse_str(&text).ok());
            if system.map(|id| *id.as_bytes()) != Some(CLEARKEY_SYSTEM_ID) {
                return Ok(None);
            }
            let kid = kid_of(element, "DRMSystem")?;
            let pssh = STANDARD.encode(pssh_box(&CLEARKEY_SYSTEM_ID, &[kid]));
            Ok(Some(format!("<{prefix}PSSH>{pssh}</{prefix}PSSH>")))
        }
        _ => Ok(None),
    }
}

fn write_failed(error: std::io::Error) -> CpixError {
    invalid(format!("the answer could not be written ({error})"))
}

/// A version 1 `pssh` box (ISO/IEC 23001-7) listing `kids`, with no data.
fn pssh_box(system_id: &[u8; 16], kids: &[Kid]) -> Vec<u8> {
    let size = 4 + 4 + 4 + 16 + 4 + 16 * kids.len() + 4;
    let mut pssh = Vec::with_capacity(size);
    pssh.extend_from_slice(&(size as u32).to_be_bytes());
    pssh.extend_from_slice(b"pssh");
    pssh.extend_from_slice(&[1, 0, 0, 0]);
    pssh.extend_from_slice(system_id);
    pssh.extend_from_slice(&(kids.len() as u32).to_be_bytes());
    for kid in kids {
        pssh.extend_from_slice(&kid.0);
    }
    pssh.extend_from_slice(&0u32.to_be_bytes());
    pssh
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "6c5f5206-7d98-4808-84d8-94f132c1e9fe";

    fn request(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><cpix:CPIX contentId="movie-1" version="2.3" xmlns:cpix="urn:dashif:org:cpix">{body}</cpix:CPIX>"#
        )
    }

    #[test]
    fn requests_give_content_id_and_kids_once_each() {
        let document = request(&format!(
            r#"<cpix:ContentKeyList><cpix:ContentKey kid="{KID}"/><cpix:ContentKey kid="{KID}"></cpix:ContentKey></cpix:ContentKeyList>"#
        ));

        let parsed = CpixRequest::parse(document.as_bytes()).unwrap();

        assert_eq!(parsed.content_id.as_str(), "movie-1");
        assert_eq!(parsed.kids, vec![Kid::from_hex(KID).unwrap()]);
    }

    #[test]
    fn broken_documents_name_their_fault() {
        let reason = |document: &str| CpixRequest::parse(document.as_bytes()).unwrap_err().0;

        assert!(reason("<cpix:CPIX").contains("XML"));
        assert_eq!(reason(" \n"), "the document is empty");
        assert_eq!(
            reason("hello"),
            "the document is not XML: it holds no element"
        );
        assert!(reason("<CPIX contentId=\"movie-1\"/>").contains("root"));
        assert!(reason(&request("")).contains("no ContentKey"));
        let whole = request(&format!(r#"<cpix:ContentKey kid="{KID}"/>"#));
        let truncated = whole.trim_end_matches("</cpix:CPIX>");
        assert!(reason(truncated).contains("before its root element is closed"));
        assert!(reason(&format!("{whole}<extra/>")).contains("more than one root"));
        assert!(reason(&request("<cpix:ContentKey/>")).contains("no kid"));
        let compact = format!(r#"<cpix:ContentKey kid="{}"/>"#, KID.replace('-', ""));
        assert!(reason(&request(&compact)).contains("not a UUID with dashes"));
        let stray = format!(
            r#"<cpix:ContentKey kid="{KID}"/><cpix:DRMSystem kid="11111111-1111-1111-1111-111111111111" systemId="e1e1e1e1-e1e1-e1e1-e1e1-e1e1e1e1e1e1"/>"#
        );
        assert!(reason(&request(&stray)).contains("names no ContentKey"));
    }

    #[test]
    fn the_pssh_box_lists_the_kids() {
        let kid = Kid::from_hex(KID).unwrap();

        let pssh = pssh_box(&CLEARKEY_SYSTEM_ID, &[kid]);

        assert_eq!(pssh.len(), 52);
        assert_eq!(&pssh[..8], [0, 0, 0, 52, b'p', b's', b's', b'h']);
        assert_eq!(&pssh[32..48], kid.0);
    }
}
