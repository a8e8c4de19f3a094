//! The underlying error of a nost error, kept for `source()` chains.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error beneath a nost error (an I/O error, the HTTP or AMQP client's
/// error, a token source's error), kept so that
/// [`Error::source`] chains reach it.
///
/// Shared behind an `Arc` so the errors holding it stay `Clone` (they are
/// broadcast as events); two causes are equal when they say the same thing,
/// so those errors can stay `PartialEq`. It is transparent: its `Display`
/// and `source()` are the underlying error's. Reach the underlying error
/// itself with [`downcast_ref`](Self::downcast_ref).
///
/// ```
/// use nost_config::Cause;
/// let cause = Cause::new(std::io::Error::other("connection reset"));
/// assert_eq!(cause.to_string(), "connection reset");
/// assert!(cause.downcast_ref::<std::io::Error>().is_some());
/// assert!(cause.find::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    /// Keep `error` as a cause.
    pub fn new<E: Error + Send + Sync + 'static>(error: E) -> Self {
        Cause(Arc::new(error))
    }

    /// The underlying error as a `T`, when it is one.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// The first error in the chain (the underlying error, then its
    /// `source()`s) that is a `T`. An [`std::io::Error`] in the chain is
    /// looked into: its own `source()` skips the error it wraps (rustls
    /// reports a refused certificate as an I/O error wrapping its own).
    pub fn find<T: Error + 'static>(&self) -> Option<&T> {
        let mut next: Option<&(dyn Error + 'static)> = Some(&*self.0);
        while let Some(e) = next {
            if let Some(t) = e.downcast_ref::<T>() {
                return Some(t);
            }
            next = match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn Error + 'static)),
                None => e.source(),
            };
        }
        None
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}
