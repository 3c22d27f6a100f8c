//! hsrun: an OCI runtime (runc's command line) over host-setup's engine; see
//! host_setup::oci.
#![deny(unsafe_code)]

fn main() {
    std::process::exit(host_setup::oci::cli::main(std::env::args().collect()));
}
