//! ONVIF onboarding: a SOAP client for ONVIF devices over the existing HTTP client (`soap`:
//! WS-Security UsernameToken sign-in in the device's time, faults classified), the device and
//! media services (`device`), WS-Discovery (`discovery`), motion events by pull-point
//! subscription (`events`), and onboarding (`onboard`: what a
//! device streams, written as a camera entry of our configuration with no credentials in it).
//! XML is read with `roxmltree`, matched by namespace, never by prefix (`xml`).

pub mod device;
pub mod discovery;
pub mod events;
pub mod onboard;
pub mod soap;
pub mod xml;

pub use device::{Device, DeviceInfo, MediaProfile, Services, device_service_url, strip_userinfo};
pub use discovery::{Probe, ProbeMatch, discover};
pub use events::{Notification, PullPoint};
pub use onboard::{CameraEntry, Inspection, camera_toml, inspect};
pub use soap::{Credentials, Fault, OnvifError};
