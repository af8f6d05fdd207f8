//! What the service reads of a Widevine CDM's message without holding any
//! Widevine key: whether it is a service-certificate request, and the
//! client identification of a license request when the CDM sent it in the
//! clear. Only the few messages and fields needed are declared, with the
//! field numbers of the published license protocol; prost skips the rest.

use super::device::{Platform, ReportedDevice};

/// `SignedMessage.type` of a license request.
const LICENSE_REQUEST: i32 = 1;
/// The whole body of a service-certificate request: `SignedMessage` with
/// `type = SERVICE_CERTIFICATE_REQUEST (4)` and nothing else.
const CERTIFICATE_REQUEST: [u8; 2] = [0x08, 0x04];

/// The envelope of every Widevine message.
#[derive(Clone, PartialEq, prost::Message)]
struct SignedMessage {
    #[prost(int32, optional, tag = "1")]
    r#type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    msg: Option<Vec<u8>>,
}

/// A license request; `encrypted_client_id` (field 8) is not declared,
/// since nothing can be read from it without the provider's key.
#[derive(Clone, PartialEq, prost::Message)]
struct LicenseRequest {
    #[prost(message, optional, tag = "1")]
    client_id: Option<ClientIdentification>,
}

/// The CDM's identification.
#[derive(Clone, PartialEq, prost::Message)]
struct ClientIdentification {
    #[prost(message, repeated, tag = "3")]
    client_info: Vec<NameValue>,
}

/// One `client_info` entry.
#[derive(Clone, PartialEq, prost::Message)]
struct NameValue {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// Whether the body is a service-certificate request, which a player
/// sends before its first license request and which issues no license.
pub fn is_certificate_request(body: &[u8]) -> bool {
    body == CERTIFICATE_REQUEST
}

/// The unencrypted client info of a license request, if the body is one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    company_name: Option<String>,
    model_name: Option<String>,
    architecture_name: Option<String>,
    platform_name: Option<String>,
    cdm_version: Option<String>,
}

impl ClientInfo {
    /// Reads the client info of a license request; None when the body is
    /// no license request, is malformed, or hides its client id.
    pub fn from_license_request(body: &[u8]) -> Option<Self> {
        let signed = <SignedMessage as prost::Message>::decode(body).ok()?;
        if signed.r#type != Some(LICENSE_REQUEST) {
            return None;
        }
        let request = <LicenseRequest as prost::Message>::decode(signed.msg?.as_slice()).ok()?;
        let mut info = Self::default();
        for entry in request.client_id?.client_info {
            let (Some(name), Some(value)) = (entry.name, entry.value) else {
                continue;
            };
            let slot = match name.as_str() {
                "company_name" => &mut info.company_name,
                "model_name" => &mut info.model_name,
                "architecture_name" => &mut info.architecture_name,
                "platform_name" => &mut info.platform_name,
                "widevine_cdm_version" => &mut info.cdm_version,
                _ => continue,
            };
            *slot = Some(value).filter(|value| !value.trim().is_empty());
        }
        Some(info)
    }

    /// What the client info says about the device.
    pub fn reported(&self) -> ReportedDevice {
        ReportedDevice {
            device_id: None,
            device_model: self.device_model(),
            platform: self.platform(),
        }
    }

    /// `company-model-architecture-cdmVersion` from the fields present, e.g.
    /// `Google-ChromeCDM-x86-64-4.10.2830.0`; None without make or model.
    fn device_model(&self) -> Option<String> {
        self.company_name.as_ref().or(self.model_name.as_ref())?;
        let parts: Vec<&str> = [
            &self.company_name,
            &self.model_name,
            &self.architecture_name,
            &self.cdm_version,
        ]
        .into_iter()
        .filter_map(|part| part.as_deref())
        .collect();
        Some(parts.join("-"))
    }

    /// The platform `platform_name` names, when it is one we know.
    fn platform(&self) -> Option<Platform> {
        let name = self.platform_name.as_deref()?.to_ascii_lowercase();
        // Checked in order: ChromeOS and Android also say Linux.
        const TABLE: [(&str, Platform); 12] = [
            ("chrome", Platform::ChromeOs),
            ("cros", Platform::ChromeOs),
            ("android", Platform::Android),
            ("ios", Platform::Ios),
            ("iphone", Platform::Ios),
            ("ipad", Platform::Ios),
            ("windows", Platform::Windows),
            ("mac", Platform::MacOs),
            ("darwin", Platform::MacOs),
            ("tizen", Platform::Tv),
            ("webos", Platform::Tv),
            ("linux", Platform::Linux),
        ];
        TABLE
            .iter()
            .find(|(mark, _)| name.contains(mark))
            .map(|(_, platform)| *platform)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn license_request(info: &[(&str, &str)]) -> Vec<u8> {
        let client_info = info
            .iter()
            .map(|(name, value)| NameValue {
                name: Some((*name).to_owned()),
                value: Some((*value).to_owned()),
            })
            .collect();
        let request = LicenseRequest {
            client_id: Some(ClientIdentification { client_info }),
        };
        SignedMessage {
            r#type: Some(LICENSE_REQUEST),
            msg: Some(request.encode_to_vec()),
        }
        .encode_to_vec()
    }

    #[test]
    fn clear_client_info_gives_model_and_platform() {
        let body = license_request(&[
            ("company_name", "Google"),
            ("model_name", "ChromeCDM"),
            ("architecture_name", "x86-64"),
            ("platform_name", "Windows"),
            ("widevine_cdm_version", "4.10.2830.0"),
            ("device_name", "ignored"),
        ]);

        let info = ClientInfo::from_license_request(&body).unwrap();

        assert_eq!(
            info.device_model().as_deref(),
            Some("Google-ChromeCDM-x86-64-4.10.2830.0")
        );
        assert_eq!(info.platform(), Some(Platform::Windows));
    }

    #[test]
    fn certificate_requests_and_broken_bodies_carry_no_client_info() {
        assert!(is_certificate_request(&[0x08, 0x04]));
        assert!(!is_certificate_request(&[0x08, 0x04, 0x00]));
        assert_eq!(ClientInfo::from_license_request(&[0x08, 0x04]), None);
        let truncated = hex::decode("08011210fffe80c328000102").unwrap();
        assert_eq!(ClientInfo::from_license_request(&truncated), None);
        let unnamed = license_request(&[("platform_name", "Linux")]);
        let info = ClientInfo::from_license_request(&unnamed).unwrap();
        assert_eq!(info.device_model(), None);
        assert_eq!(info.platform(), Some(Platform::Linux));
    }
}
