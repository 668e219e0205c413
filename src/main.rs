mod artifact;

fn main() {}
