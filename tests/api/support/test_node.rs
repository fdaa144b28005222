// The libvirt test driver's node XML, written once for both suites: the API tests (through
// `helpers::TestNode`) and the unit tests of `src/libvirt`, which `include!` this file. Plain
// comments only: an included file may carry no inner attribute or doc.

/// One `<domain type='test'>` of a test-driver node.
pub struct TestDomain {
    pub name: String,
    pub uuid: String,
    /// libvirt's `virDomainState` number: 1 running, 3 paused, 5 shut off.
    pub runstate: u8,
    pub memory_kib: u64,
    pub current_memory_kib: u64,
    pub vcpus: u32,
}

impl TestDomain {
    /// Domain `n`'s UUID, memory and CPUs differ from every other's.
    pub fn new(name: &str, runstate: u8, n: u32) -> Self {
        TestDomain {
            name: name.to_owned(),
            uuid: format!("6f1a3c2e-0000-4000-8000-{n:012x}"),
            runstate,
            memory_kib: 1_048_576 + u64::from(n) * 1024,
            current_memory_kib: 524_288 + u64::from(n) * 512,
            vcpus: 1 + n % 4,
        }
    }
}

/// A test-driver node file of `domains`.
pub fn node_xml(domains: &[TestDomain]) -> String {
    let mut xml = String::from("<node>\n");
    for d in domains {
        xml.push_str(&format!(
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
             <name>{}</name><uuid>{}</uuid>\
             <memory unit='KiB'>{}</memory><currentMemory unit='KiB'>{}</currentMemory>\
             <vcpu>{}</vcpu><os><type>hvm</type></os>\
             <test:runstate>{}</test:runstate></domain>\n",
            xml_escape(&d.name),
            d.uuid,
            d.memory_kib,
            d.current_memory_kib,
            d.vcpus,
            d.runstate
        ));
    }
    xml.push_str("</node>\n");
    xml
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}
