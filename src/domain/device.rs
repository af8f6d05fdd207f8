//! Device fields of a history record (spec section 7) worked out from what
//! the player sends: `platformName` and `deviceModel` from the User-Agent
//! (parsed by the `woothee` crate), `deviceId` from the player's header or
//! a hash of the User-Agent and client address. What the CDM or the
//! upstream license server reports replaces the guesses.

use std::net::IpAddr;

use md5::{Digest, Md5};
use serde::Serialize;

/// Longest `X-DRM-DEVICE-ID` value taken as given.
const MAX_DEVICE_ID_LEN: usize = 128;

/// Marks in a User-Agent that mean a television or set-top box, checked
/// before the operating system because TVs mostly run Linux or Android.
const TV_MARKS: [&str; 11] = [
    "SMART-TV",
    "SmartTV",
    "Tizen",
    "Web0S",
    "WebOS",
    "HbbTV",
    "AppleTV",
    "CrKey",
    "BRAVIA",
    "Android TV",
    "AFT",
];

/// The platforms history reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(clippy::enum_variant_names)]
pub enum Platform {
    /// Microsoft Windows.
    #[serde(rename = "PLATFORM_WINDOWS")]
    Windows,
    /// Apple macOS.
    #[serde(rename = "PLATFORM_MAC_OS")]
    MacOs,
    /// Desktop Linux.
    #[serde(rename = "PLATFORM_LINUX")]
    Linux,
    /// ChromeOS.
    #[serde(rename = "PLATFORM_CHROME_OS")]
    ChromeOs,
    /// Android phones and tablets.
    #[serde(rename = "PLATFORM_ANDROID")]
    Android,
    /// iPhone, iPad and iPod.
    #[serde(rename = "PLATFORM_IOS")]
    Ios,
    /// Televisions and set-top boxes.
    #[serde(rename = "PLATFORM_TV")]
    Tv,
    /// Anything not recognised.
    #[serde(rename = "PLATFORM_UNKNOWN")]
    Unknown,
}

impl Platform {
    /// Every platform, in a stable order.
    pub const ALL: [Platform; 8] = [
        Self::Windows,
        Self::MacOs,
        Self::Linux,
        Self::ChromeOs,
        Self::Android,
        Self::Ios,
        Self::Tv,
        Self::Unknown,
    ];

    /// The inverse of [`Platform::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.name() == name)
    }

    /// The wire name, e.g. `PLATFORM_LINUX`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Windows => "PLATFORM_WINDOWS",
            Self::MacOs => "PLATFORM_MAC_OS",
            Self::Linux => "PLATFORM_LINUX",
            Self::ChromeOs => "PLATFORM_CHROME_OS",
            Self::Android => "PLATFORM_ANDROID",
            Self::Ios => "PLATFORM_IOS",
            Self::Tv => "PLATFORM_TV",
            Self::Unknown => "PLATFORM_UNKNOWN",
        }
    }

    /// The short OS label used inside `deviceModel`.
    fn label(self) -> &'static str {
        match self {
            Self::Windows => "Windows",
            Self::MacOs => "Mac",
            Self::Linux => "Linux",
            Self::ChromeOs => "ChromeOS",
            Self::Android => "Android",
            Self::Ios => "iOS",
            Self::Tv => "TV",
            Self::Unknown => "Unknown",
        }
    }
}

/// The device fields of one history record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable id of the device.
    pub device_id: String,
    /// e.g. `Chrome-Linux-x86_64-131`.
    pub device_model: String,
    /// The platform family.
    pub platform: Platform,
}

impl DeviceInfo {
    /// Works out the device fields from the request's headers and peer.
    pub fn detect(user_agent: Option<&str>, device_header: Option<&str>, client: IpAddr) -> Self {
        let user_agent = user_agent.unwrap_or("");
        let device_id = device_header
            .map(str::trim)
            .filter(|id| {
                (1..=MAX_DEVICE_ID_LEN).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned)
            .unwrap_or_else(|| hex::encode(Md5::digest(format!("{user_agent}\n{client}"))));
        let (platform, device_model) = describe_user_agent(user_agent);
        Self {
            device_id,
            device_model,
            platform,
        }
    }
}

/// Device details a CDM's message or an upstream's answer reports; each
/// one present replaces what the headers suggested.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReportedDevice {
    /// Device id.
    pub device_id: Option<String>,
    /// Device model.
    pub device_model: Option<String>,
    /// Platform.
    pub platform: Option<Platform>,
}

impl ReportedDevice {
    /// Reads `deviceId`, `deviceModel` and `platformName` from a JSON
    /// answer, at the top or inside `content` (the service's own JSON
    /// shape); nothing when the answer is not JSON.
    pub fn from_json_answer(body: &[u8]) -> Self {
        let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) else {
            return Self::default();
        };
        let fields = match object.get("content") {
            Some(serde_json::Value::Object(content)) => content,
            _ => &object,
        };
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|value| !value.is_empty() && value.len() <= MAX_DEVICE_ID_LEN)
                .map(str::to_owned)
        };
        Self {
            device_id: text("deviceId"),
            device_model: text("deviceModel"),
            platform: text("platformName").and_then(|name| Platform::from_name(&name)),
        }
    }

    /// Fills the gaps of `self` from `other`.
    pub fn or(self, other: Self) -> Self {
        Self {
            device_id: self.device_id.or(other.device_id),
            device_model: self.device_model.or(other.device_model),
            platform: self.platform.or(other.platform),
        }
    }
}

impl DeviceInfo {
    /// Takes every field `reported` holds in place of the detected one.
    pub fn with_reported(self, reported: ReportedDevice) -> Self {
        Self {
            device_id: reported.device_id.unwrap_or(self.device_id),
            device_model: reported.device_model.unwrap_or(self.device_model),
            platform: reported.platform.unwrap_or(self.platform),
        }
    }
}

fn describe_user_agent(user_agent: &str) -> (Platform, String) {
    // Headless Chromium is Chrome; woothee only knows the desktop token.
    let normalised = user_agent.replace("HeadlessChrome/", "Chrome/");
    let parsed = woothee::parser::Parser::new().parse(&normalised);
    let os = parsed.as_ref().map_or("", |result| result.os);
    let platform = platform_of(user_agent, os);
    let (browser, version) = match &parsed {
        Some(result) if result.name != woothee::woothee::VALUE_UNKNOWN => {
            (result.name.replace([' ', '-'], ""), result.version)
        }
        _ => ("Unknown".to_owned(), ""),
    };
    let major = version
        .split('.')
        .next()
        .filter(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("0");
    (
        platform,
        format!(
            "{browser}-{}-{}-{major}",
            platform.label(),
            architecture(user_agent)
        ),
    )
}

fn platform_of(user_agent: &str, os: &str) -> Platform {
    if TV_MARKS.iter().any(|mark| user_agent.contains(mark)) {
        return Platform::Tv;
    }
    match os {
        "Android" => Platform::Android,
        "iPhone" | "iPad" | "iPod" | "iOS" => Platform::Ios,
        "Mac OSX" => Platform::MacOs,
        "ChromeOS" => Platform::ChromeOs,
        "Linux" => Platform::Linux,
        os if os.starts_with("Windows") => Platform::Windows,
        _ => Platform::Unknown,
    }
}

/// The CPU architecture a User-Agent admits to, in the CDM's spelling.
fn architecture(user_agent: &str) -> &'static str {
    const TABLE: [(&str, &str); 10] = [
        ("x86_64", "x86_64"),
        ("Win64", "x86_64"),
        ("x64", "x86_64"),
        ("amd64", "x86_64"),
        ("Intel Mac", "x86_64"),
        ("aarch64", "ARM64"),
        ("arm64", "ARM64"),
        ("armv", "ARM"),
        ("i686", "x86"),
        ("i386", "x86"),
    ];
    TABLE
        .iter()
        .find(|(mark, _)| user_agent.contains(mark))
        .map_or("unknown", |(_, arch)| arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn model(user_agent: &str) -> (Platform, String) {
        let info = DeviceInfo::detect(Some(user_agent), None, LOCAL);
        (info.platform, info.device_model)
    }

    #[test]
    fn desktop_browsers_get_platform_and_model() {
        assert_eq!(
            model("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
            (Platform::Linux, "Chrome-Linux-x86_64-131".to_owned())
        );
        assert_eq!(
            model("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"),
            (Platform::Linux, "Chrome-Linux-x86_64-156".to_owned())
        );
        assert_eq!(
            model(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
            ),
            (Platform::Windows, "Firefox-Windows-x86_64-133".to_owned())
        );
        assert_eq!(
            model("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15").0,
            Platform::MacOs
        );
    }

    #[test]
    fn phones_chromebooks_and_tvs_are_told_apart() {
        assert_eq!(model("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36").0, Platform::Android);
        assert_eq!(model("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1").0, Platform::Ios);
        assert_eq!(model("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36").0, Platform::ChromeOs);
        assert_eq!(model("Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36").0, Platform::Tv);
        assert_eq!(
            model("curl/8.0"),
            (
                Platform::Unknown,
                "HTTPLibrary-Unknown-unknown-0".to_owned()
            )
        );
    }

    #[test]
    fn device_id_prefers_the_players_header() {
        let from_header = DeviceInfo::detect(Some("ua"), Some("device-42"), LOCAL);
        let derived = DeviceInfo::detect(Some("ua"), None, LOCAL);
        let other_address = DeviceInfo::detect(Some("ua"), None, "10.0.0.1".parse().unwrap());

        assert_eq!(from_header.device_id, "device-42");
        assert_eq!(derived.device_id, hex::encode(Md5::digest("ua\n127.0.0.1")));
        assert_ne!(derived.device_id, other_address.device_id);
    }

    #[test]
    fn reported_details_replace_detected_ones() {
        let detected = DeviceInfo::detect(Some("curl/8.0"), Some("device-42"), LOCAL);
        let answer =
            br#"{"content": {"deviceModel": "Pixel-8", "platformName": "PLATFORM_ANDROID"}}"#;

        let reported = ReportedDevice::from_json_answer(answer).or(ReportedDevice {
            device_model: Some("from-cdm".to_owned()),
            platform: Some(Platform::Linux),
            ..ReportedDevice::default()
        });
        let info = detected.with_reported(reported);

        assert_eq!(info.device_model, "Pixel-8");
        assert_eq!(info.platform, Platform::Android);
        assert_eq!(info.device_id, "device-42");
        assert_eq!(
            ReportedDevice::from_json_answer(&[0xff, 0x00]),
            ReportedDevice::default()
        );
    }
}
