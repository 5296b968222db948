//! The Docker engine: the client (its API version negotiated with the engine's), images,
//! labels, networks, and the life of one container.

use super::{LABEL, RUN_LABEL};
use crate::StartupError;
use bollard::errors::Error;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    RemoveContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;

/// A client of the engine `DOCKER_HOST` names (`/var/run/docker.sock` without it), speaking
/// the older of its own API version and the engine's.
pub(super) async fn connect() -> Result<Docker, StartupError> {
    let engine = |source| StartupError::Engine {
        what: "cannot reach the Docker engine".into(),
        source,
    };
    Docker::connect_with_defaults()
        .map_err(engine)?
        .negotiate_version()
        .await
        .map_err(engine)
}

/// The host at which the engine publishes ports: `DOCKER_HOST`'s host for an engine reached by
/// TCP, the loopback interface otherwise.
pub(super) fn published_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| {
            let rest = h
                .strip_prefix("tcp://")
                .or_else(|| h.strip_prefix("http://"))
                .or_else(|| h.strip_prefix("https://"))?;
            let host = rest.split(['/', ':']).next()?;
            (!host.is_empty()).then(|| host.to_string())
        })
        .unwrap_or_else(|| "127.0.0.1".to_string())
}

/// The labels of everything a run creates: this process's id and the run's name.
pub(super) fn labels(run: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_string(), std::process::id().to_string()),
        (RUN_LABEL.to_string(), run.to_string()),
    ])
}

/// Makes sure `image` is on the engine, pulling it when it is not.
pub(super) async fn ensure_image(docker: &Docker, image: &str) -> Result<(), StartupError> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let (repo, tag) = split_image(image);
    let mut pull = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(step) = pull.next().await {
        step.map_err(|source| StartupError::NoImage {
            image: image.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Whether `image` is on the engine (nothing is pulled).
pub(super) async fn check_image(docker: &Docker, image: &str) -> Result<(), StartupError> {
    docker
        .inspect_image(image)
        .await
        .map(|_| ())
        .map_err(|source| StartupError::NotOnEngine {
            image: image.to_string(),
            source,
        })
}

/// Creates a bridge network of the run (`internal`: no way out of it).
pub(super) async fn create_network(
    docker: &Docker,
    name: &str,
    internal: bool,
    run: &str,
) -> Result<(), StartupError> {
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            labels: Some(labels(run)),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|source| StartupError::Engine {
            what: format!("cannot create network {name}"),
            source,
        })
}

/// What one container runs.
pub(super) struct Spec {
    /// The container's name.
    pub(super) name: String,
    /// The image.
    pub(super) image: String,
    /// The command line.
    pub(super) cmd: Vec<String>,
    /// The port inside, published on `host_port` of the engine's host.
    pub(super) port: u16,
    /// The published port.
    pub(super) host_port: u16,
    /// The network it is created on.
    pub(super) network: String,
    /// The run's name, for its labels.
    pub(super) run: String,
    /// A file written into the container before it starts: (directory, file name, content).
    pub(super) file: Option<(String, String, Vec<u8>)>,
    /// Environment variables (`NAME=value`).
    pub(super) env: Vec<String>,
    /// Bind mounts (`host-path:container-path[:ro]`).
    pub(super) binds: Vec<String>,
}

/// The label an image built by `scripts/build-image.sh` carries: the clock shim's path in it.
pub(super) const CLOCK_SHIM_LABEL: &str = "locksim.clock-shim";

/// Where `image` carries locksim's clock shim ([`CLOCK_SHIM_LABEL`]), if it does.
pub(super) async fn clock_shim(docker: &Docker, image: &str) -> Option<String> {
    let inspected = docker.inspect_image(image).await.ok()?;
    inspected
        .config?
        .labels?
        .get(CLOCK_SHIM_LABEL)
        .filter(|p| p.starts_with('/'))
        .cloned()
}

/// Whether the engine runs on this machine (a unix socket, the default), so a host directory
/// can be bind-mounted into its containers.
pub(super) fn is_local() -> bool {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => h.starts_with("unix://"),
        _ => true,
    }
}

/// Creates and starts the container `spec` describes; its id.
pub(super) async fn run(docker: &Docker, spec: Spec) -> Result<String, Error> {
    let port = format!("{}/tcp", spec.port);
    let bindings = HashMap::from([(
        port.clone(),
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some(spec.host_port.to_string()),
        }]),
    )]);
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(spec.name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(spec.image.clone()),
                cmd: Some(spec.cmd.clone()),
                env: (!spec.env.is_empty()).then(|| spec.env.clone()),
                labels: Some(labels(&spec.run)),
                exposed_ports: Some(vec![port]),
                host_config: Some(HostConfig {
                    port_bindings: Some(bindings),
                    network_mode: Some(spec.network.clone()),
                    binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await?;
    if let Some((dir, file, content)) = &spec.file {
        docker
            .upload_to_container(
                &created.id,
                Some(UploadToContainerOptions {
                    path: dir.clone(),
                    ..Default::default()
                }),
                bollard::body_full(tar_of_one(file, content).into()),
            )
            .await?;
    }
    docker.start_container(&created.id, None).await?;
    Ok(created.id)
}

/// Removes a container and its volumes, running or not.
pub(super) async fn remove(docker: &Docker, id: &str) -> Result<(), Error> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
}

/// A tar archive holding one file, `name` (mode 0644), with `content`.
pub(super) fn tar_of_one(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut put = |at: usize, field: &[u8]| header[at..at + field.len()].copy_from_slice(field);
    put(0, name.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", content.len()).as_bytes());
    put(136, b"00000000000\0");
    put(156, b"0");
    put(257, b"ustar\x0000");
    // The checksum is taken with its own field as spaces.
    put(148, b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn label_filter(filter: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![filter.to_string()])])
}

/// Containers and networks matching the label `filter` (`key=value`), by name.
pub(super) async fn labelled(
    docker: &Docker,
    filter: &str,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(filter)),
            ..Default::default()
        }))
        .await?
        .into_iter()
        .map(|c| {
            c.names
                .and_then(|n| n.first().cloned())
                .or(c.id)
                .unwrap_or_default()
        })
        .collect();
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(filter)),
        }))
        .await?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    Ok((containers, networks))
}

/// Removes every container, then every network, matching the label `filter`.
pub(super) async fn remove_labelled(docker: &Docker, filter: &str) {
    let Ok((containers, networks)) = labelled(docker, filter).await else {
        return;
    };
    for c in containers {
        let _ = remove(docker, c.trim_start_matches('/')).await;
    }
    for n in networks {
        let _ = docker.remove_network(&n).await;
    }
}

/// `repo:tag` split at the tag's colon (`host:5000/img` has no tag: `latest`).
pub(super) fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}
