//! Enums that travel as fixed strings (error codes, activity actions): one list of variants and
//! their names gives serde, the OpenAPI schema, the TypeScript type, `as_str` and `FromStr`.

/// `wire_enum! { #[doc] pub enum Name / UnknownName { Variant = "name", … } }`. `UnknownName`
/// is the error of `FromStr` for a name not in the list.
#[macro_export]
#[doc(hidden)]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident / $unknown:ident {
            $($(#[$doc:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema, specta::Type,
        )]
        pub enum $name {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[doc = concat!("A name that is no [`", stringify!($name), "`].")]
        #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
        #[error("{0:?} is not a known {name}", name = stringify!($name))]
        pub struct $unknown(pub String);

        impl std::str::FromStr for $name {
            type Err = $unknown;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err($unknown(s.to_owned())),
                }
            }
        }
    };
}
