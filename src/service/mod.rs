//! The service: [`Service::builder`] (the spec's `create_service`), the [`Kernel`]
//! state handle, the auto-mounted routes, the middleware stack and graceful
//! shutdown.

mod kernel;
mod settings;

pub use kernel::Kernel;
pub use settings::{
    CorsSettings, FeatureSettings, MetricsProtection, SecurityHeadersSettings, ServerSettings, StackSettings,
};

/// A built service, ready to serve.
#[derive(Debug)]
pub struct Service {
    kernel: Kernel,
}

impl Service {
    /// The kernel of this service.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
}
