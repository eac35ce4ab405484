import Foundation
@testable import DMATrace

/// A directory laid out like tracefs, made from a recorded trace.dat v6: its formats under
/// events/, and an instance whose per_cpu/cpuN/trace_pipe_raw files hold that recording's raw
/// pages, as the kernel would serve them. The "kernel" side of the fake is this builder: the
/// directory itself cannot make an instance on mkdir, so `instance(named:)` lays one out.
struct FakeTracefs {
    let root: URL
    let sections: TraceDatV6Sections
    var release = "6.12.117+deb13-amd64"

    static func eventName(_ format: [UInt8]) -> String? {
        let text = String(decoding: format, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("name: ") }) else { return nil }
        return String(line.dropFirst("name: ".count))
    }

    /// `systems` nil: every system of the recording.
    init(at root: URL, from path: String, systems: Set<String>? = nil) throws {
        self.root = root
        sections = try TraceDatV6Sections(path: path)
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("instances"), withIntermediateDirectories: true)
        func put(_ relative: String, _ bytes: [UInt8]) throws {
            let url = root.appendingPathComponent(relative)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        try put("events/header_page", sections.metadata.headerPage)
        try put("events/header_event", sections.metadata.headerEvent)
        for f in sections.metadata.ftraceFormats {
            if let n = Self.eventName(f) { try put("events/ftrace/\(n)/format", f) }
        }
        for system in sections.metadata.systems where systems?.contains(system.name) ?? true {
            try put("events/\(system.name)/enable", Array("0\n".utf8))
            for f in system.formats {
                if let n = Self.eventName(f) {
                    try put("events/\(system.name)/\(n)/format", f)
                    try put("events/\(system.name)/\(n)/enable", Array("0\n".utf8))
                }
            }
        }
        try put("printk_formats", sections.metadata.printkFormats)
        try put("saved_cmdlines", sections.metadata.cmdlines)
        try put("kallsyms", sections.metadata.kallsyms)
        try put("trace_clock", Array("[local] global counter uptime perf mono mono_raw boot tai x86-tsc\n".utf8))
        try put("kernel-release", Array((release + "\n").utf8))
        // The top level's CPUs, as the capture counts them (a CPU that never delivered holds the merge).
        for cpu in sections.pages.indices {
            try fm.createDirectory(at: root.appendingPathComponent("per_cpu/cpu\(cpu)"), withIntermediateDirectories: true)
        }
    }

    func instanceDir(_ name: String) -> URL { root.appendingPathComponent("instances/\(name)") }

    /// For a dma-trace process not started yet, whose instance name holds its pid: moves a
    /// laid-out instance aside; `asOwnInstance` then gives the shell command that copies it in
    /// under the shell's own pid and becomes `dma-trace SUBCOMMAND --tracefs ROOT REST` with it.
    func stage(_ instance: URL) throws -> URL {
        let staged = root.deletingLastPathComponent().appendingPathComponent("staged-" + instance.lastPathComponent)
        try FileManager.default.moveItem(at: instance, to: staged)
        return staged
    }

    func asOwnInstance(_ staged: URL, _ subcommand: String, _ rest: String) -> String {
        "cp -r '\(staged.path)' '\(root.path)/instances/dma-trace-'$$ && exec '\(Fixtures.binary.path)' \(subcommand) --tracefs '\(root.path)' \(rest)"
    }

    /// What the kernel makes on mkdir instances/NAME, with the recording's pages in its buffers.
    func instance(named name: String, cpus: Int? = nil) throws -> URL {
        let dir = instanceDir(name)
        let fm = FileManager.default
        func put(_ relative: String, _ bytes: [UInt8]) throws {
            let url = dir.appendingPathComponent(relative)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        try put("tracing_on", Array("1\n".utf8))
        try put("buffer_size_kb", Array("1408\n".utf8))
        try put("trace_marker", [])
        try put("trace_clock", Array("[local] global counter uptime perf mono mono_raw boot tai x86-tsc\n".utf8))
        try put("options/stacktrace", Array("0\n".utf8))
        let eventsDir = root.appendingPathComponent("events")
        for system in (try? fm.contentsOfDirectory(atPath: eventsDir.path)) ?? [] where system != "ftrace" {
            guard fm.fileExists(atPath: eventsDir.appendingPathComponent("\(system)/enable").path) else { continue }
            try put("events/\(system)/enable", Array("0\n".utf8))
            for e in (try? fm.contentsOfDirectory(atPath: eventsDir.appendingPathComponent(system).path)) ?? [] where e != "enable" {
                try put("events/\(system)/\(e)/enable", Array("0\n".utf8))
            }
        }
        for (cpu, pages) in sections.pages.enumerated() where cpu < (cpus ?? Int.max) {
            try put("per_cpu/cpu\(cpu)/trace_pipe_raw", Array(pages.joined()))
            try put("per_cpu/cpu\(cpu)/stats", Array("entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\noldest event ts: 0.000000\nnow ts: 100.000000\ndropped events: 0\nread events: \(pages.count)\n".utf8))
        }
        return dir
    }

    func read(_ instance: String, _ relative: String) -> String? {
        try? String(contentsOf: instanceDir(instance).appendingPathComponent(relative), encoding: .utf8)
    }
}
