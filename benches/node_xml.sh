# shellcheck shell=bash
# node_xml COUNT FILE: a libvirt test-driver node file of COUNT running domains (2 vCPUs, 1 GiB,
# no devices), bench-1 to bench-COUNT. Sourced by the benchmarks.
node_xml() { # node_xml COUNT FILE
    {
        echo "<node>"
        for ((i = 1; i <= $1; i++)); do
            printf "<domain type='test'><name>bench-%d</name><uuid>be7c0000-0000-4000-8000-%012x</uuid>" "$i" "$i"
            printf "<memory unit='KiB'>1048576</memory><currentMemory unit='KiB'>524288</currentMemory>"
            printf "<vcpu>2</vcpu><os><type>hvm</type></os></domain>\n"
        done
        echo "</node>"
    } >"$2"
}
