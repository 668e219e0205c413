mod guest;

fn main() {}
