//! The guest agent binary: `/init` inside every guest (see agent/).
fn main() {
    bpfcompat_guest::main()
}
