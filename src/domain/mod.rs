//! Domain types and rules, free of HTTP and SQL: validated identifiers,
//! the X-DRM-TOKEN, ClearKey messages, device detection, sites, policies,
//! audit logs and history queries. Values are checked once, where they enter.

pub mod audit;
pub mod body;
pub mod clearkey;
pub mod cpix;
pub mod cursor;
pub mod device;
pub mod drm;
pub mod fairplay;
pub mod history;
pub mod ids;
pub mod params;
pub mod policy;
pub mod site;
pub mod summary;
pub mod token;
pub mod upstream;
pub mod widevine;
