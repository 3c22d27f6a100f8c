//! `host-setup image import|ls|rm|prune`: the command line (argh) of image/.

use std::path::PathBuf;

use argh::FromArgs;

use host_setup::error::Result;
use host_setup::image::{cmd, import, Store};
use host_setup::state::Paths;

#[derive(FromArgs)]
#[argh(subcommand, name = "image")]
/// Images in the state dir: import an archive, ls, rm, prune (layers unpacked once, shared by every container).
pub struct ImageCmd {
    #[argh(subcommand)]
    pub cmd: ImageSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ImageSub {
    Import(ImageImport),
    Ls(ImageLs),
    Rm(ImageRm),
    Prune(ImagePrune),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "import")]
/// Import a docker save archive or an OCI image layout (a directory or a tar; gzip or zstd too) and unpack its layers.
pub struct ImageImport {
    /// the archive file or layout directory
    #[argh(positional)]
    pub path: PathBuf,
    /// the name to give the image (default: the name(s) the archive gives)
    #[argh(option)]
    pub name: Option<String>,
    /// refuse a layer blob larger than this (bytes or with K, M, G; default 16G)
    #[argh(option)]
    pub max_layer_size: Option<String>,
    /// refuse a layer that unpacks to more than this (default 64G)
    #[argh(option)]
    pub max_unpacked_size: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "ls")]
/// List the images: reference, manifest digest, size (compressed layers), created.
pub struct ImageLs {}

#[derive(FromArgs)]
#[argh(subcommand, name = "rm")]
/// Remove images by name (or sha256:DIGEST) and what only they used; refused while a container uses one.
pub struct ImageRm {
    /// image names
    #[argh(positional)]
    pub refs: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "prune")]
/// Remove blobs and unpacked layers no image and no container uses.
pub struct ImagePrune {}

/// Runs an `image` command; `root` fails unless host-setup runs as root.
pub fn run(paths: &Paths, c: ImageCmd, root: &dyn Fn() -> Result<()>) -> Result<i32> {
    let size = |s: &Option<String>, what| s.as_deref().map(|t| host_setup::spec::parse_size(t, what, "1G")).transpose();
    match c.cmd {
        ImageSub::Import(i) => {
            let (blob, unpacked) =
                (size(&i.max_layer_size, "layer size")?, size(&i.max_unpacked_size, "unpacked size")?);
            if let Some(n) = &i.name {
                host_setup::image::reference::Reference::parse(n)?;
            }
            root()?;
            let mut store = Store::open(paths)?;
            store.limits.blob = blob.unwrap_or(store.limits.blob);
            store.limits.unpacked = unpacked.unwrap_or(store.limits.unpacked);
            let name = i
                .name
                .as_deref()
                .map(|n| host_setup::image::reference::Reference::parse(n).map(|r| r.to_string()))
                .transpose()?;
            for (n, d) in import::import(&store, &i.path, name.as_deref())? {
                println!("{n} {d}");
            }
        }
        ImageSub::Ls(_) => {
            root()?;
            print!("{}", cmd::ls(paths)?);
        }
        ImageSub::Rm(r) => {
            if r.refs.is_empty() {
                return Err(host_setup::usage!("image rm needs an image name, e.g. host-setup image rm busybox"));
            }
            root()?;
            let p = cmd::rm(paths, &r.refs)?;
            println!(
                "removed {}; freed {} blobs, {} layers, {}",
                r.refs.join(" "),
                p.blobs,
                p.layers,
                host_setup::spec::format_bytes(p.bytes)
            );
        }
        ImageSub::Prune(_) => {
            root()?;
            let p = cmd::prune(paths)?;
            println!("freed {} blobs, {} layers, {}", p.blobs, p.layers, host_setup::spec::format_bytes(p.bytes));
        }
    }
    Ok(0)
}
