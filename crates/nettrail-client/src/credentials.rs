//! Credentials and region, found as the AWS CLI finds them: an explicit profile, then
//! the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
//! then the profile named by `AWS_PROFILE` (or `default`) in the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) and the config file
//! (`AWS_CONFIG_FILE`, `~/.aws/config`). The region comes from `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`.

use std::collections::HashMap;
use std::path::PathBuf;

use nettrail_sigv4::Credentials;

/// Credentials and region to call with.
#[derive(Debug, Clone)]
pub struct AwsProfile {
    /// The credentials.
    pub credentials: Credentials,
    /// The region to sign for.
    pub region: String,
}

/// Why no credentials were found.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Nothing anywhere.
    #[error("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure a profile ({0})")]
    NotFound(String),
    /// A named profile that does not exist or has no keys.
    #[error("profile {0:?} has no aws_access_key_id and aws_secret_access_key in {1}")]
    Profile(String, String),
}

/// Resolves credentials and region from the process environment and files.
pub fn resolve_profile(profile: Option<&str>) -> Result<AwsProfile, CredentialsError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let read = |path: &PathBuf| std::fs::read_to_string(path).ok();
    resolve(&env, &read, profile)
}

type Section = HashMap<String, String>;

fn resolve(
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&PathBuf) -> Option<String>,
    explicit_profile: Option<&str>,
) -> Result<AwsProfile, CredentialsError> {
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let credentials_path = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_path = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let profile_name = explicit_profile
        .map(str::to_owned)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let credentials_file = read(&credentials_path)
        .map(|t| parse_ini(&t))
        .unwrap_or_default();
    let config_file = read(&config_path)
        .map(|t| parse_ini(&t))
        .unwrap_or_default();
    let empty = Section::new();
    let from_credentials = credentials_file.get(&profile_name).unwrap_or(&empty);
    let config_section = if profile_name == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile_name}")
    };
    let from_config = config_file.get(&config_section).unwrap_or(&empty);
    let profile_value = |key: &str| {
        from_credentials
            .get(key)
            .or_else(|| from_config.get(key))
            .cloned()
    };

    let from_profile = || match (
        profile_value("aws_access_key_id"),
        profile_value("aws_secret_access_key"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: profile_value("aws_session_token"),
        }),
        _ => None,
    };
    let from_env = || match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN"),
        }),
        _ => None,
    };
    // An explicit --profile wins over the environment; AWS_PROFILE does not.
    let credentials = if explicit_profile.is_some() {
        from_profile().ok_or_else(|| {
            CredentialsError::Profile(
                profile_name.clone(),
                format!(
                    "{} or {}",
                    credentials_path.display(),
                    config_path.display()
                ),
            )
        })?
    } else {
        from_env().or_else(from_profile).ok_or_else(|| {
            CredentialsError::NotFound(format!(
                "looked for profile {profile_name:?} in {} and {}",
                credentials_path.display(),
                config_path.display()
            ))
        })?
    };
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| profile_value("region"))
        .unwrap_or_else(|| "us-east-1".into());
    Ok(AwsProfile {
        credentials,
        region,
    })
}

/// The sections of an INI file as the AWS CLI writes them (`[name]`, `key = value`,
/// `#`/`;` comments).
fn parse_ini(text: &str) -> HashMap<String, Section> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .get_mut(section)
                .expect("created with its header")
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[lab]\naws_access_key_id=AKIDLAB\naws_secret_access_key=s2\naws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n# comment\n[profile lab]\nregion = ap-south-1\n[profile onlyconfig]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s3\n";

    fn run(env: &[(&str, &str)], profile: Option<&str>) -> Result<AwsProfile, CredentialsError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files = |path: &PathBuf| match path.to_str() {
            Some("/home/u/.aws/credentials") => Some(CREDENTIALS.to_owned()),
            Some("/home/u/.aws/config") => Some(CONFIG.to_owned()),
            _ => None,
        };
        resolve(&|name| env.get(name).cloned(), &files, profile)
    }

    #[test]
    fn the_environment_wins_over_the_default_profile() {
        let p = run(
            &[
                ("HOME", "/home/u"),
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "e"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(p.credentials.access_key_id, "AKIDENV");
        assert_eq!(p.region, "eu-west-1");
    }

    #[test]
    fn profiles_come_from_both_files_and_an_explicit_one_wins_over_the_environment() {
        let p = run(
            &[
                ("HOME", "/home/u"),
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "e"),
            ],
            Some("lab"),
        )
        .unwrap();
        assert_eq!(p.credentials.access_key_id, "AKIDLAB");
        assert_eq!(p.credentials.session_token.as_deref(), Some("tok"));
        assert_eq!(p.region, "ap-south-1");
        let p = run(&[("HOME", "/home/u"), ("AWS_PROFILE", "onlyconfig")], None).unwrap();
        assert_eq!(p.credentials.access_key_id, "AKIDCFG");
        assert_eq!(p.region, "us-east-1");
        let p = run(
            &[("HOME", "/home/u"), ("AWS_DEFAULT_REGION", "us-west-2")],
            None,
        )
        .unwrap();
        assert_eq!(p.credentials.access_key_id, "AKIDDEFAULT");
        assert_eq!(p.region, "us-west-2");
    }

    #[test]
    fn missing_credentials_say_where_they_were_looked_for() {
        let err = run(&[("HOME", "/nowhere")], None).unwrap_err().to_string();
        assert!(
            err.contains("AWS_ACCESS_KEY_ID") && err.contains("/nowhere/.aws/credentials"),
            "{err}"
        );
        let err = run(&[("HOME", "/home/u")], Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }
}
