import CTraceCmd
import CTraceShim
import Foundation

/// A live-capture problem: one message, exit status 2, nothing left enabled.
public struct LiveError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where tracefs is, and whether it really is tracefs or a plain directory laid
/// out like one (`--tracefs DIR` pointing at a test fixture).
public struct TracefsMount: Sendable {
    public let path: String
    public let isTracefs: Bool

    /// `override` is `--tracefs DIR`; without it the mounted tracefs is found, never mounted.
    public static func locate(_ override: String?, euid: uid_t = geteuid()) throws -> TracefsMount {
        if override == nil && euid != 0 {
            throw LiveError("live capture needs root: it creates a tracefs instance under /sys/kernel/tracing (run it with sudo)")
        }
        let path: String
        if let override {
            path = override.hasSuffix("/") && override.count > 1 ? String(override.dropLast()) : override
        } else {
            var found: UnsafePointer<CChar>?
            guard tracefs_tracing_dir_is_mounted(false, &found) == 1, let found else {
                throw LiveError("no tracefs mounted (looked at /sys/kernel/tracing and /sys/kernel/debug/tracing); mount it with `mount -t tracefs nodev /sys/kernel/tracing` or give --tracefs DIR")
            }
            path = String(cString: found)
        }
        // Before looking inside: tracefs is root's alone (0700), so to anyone else its files
        // do not seem to exist (seen in the lab: `--tracefs /sys/kernel/tracing` as nobody).
        let isTracefs = dmatrace_is_tracefs(path) == 1
        if isTracefs && euid != 0 {
            throw LiveError("live capture needs root: it creates a tracefs instance under \(path) (run it with sudo)")
        }
        guard FileManager.default.fileExists(atPath: path + "/events/header_page") else {
            throw LiveError("no tracefs at \(path): it has no events/header_page")
        }
        guard FileManager.default.fileExists(atPath: path + "/instances") else {
            throw LiveError("tracefs at \(path) has no instances/ directory (kernel too old for instances?)")
        }
        _ = path.withCString { tracefs_set_tracing_dir(UnsafeMutablePointer(mutating: $0)) }
        return TracefsMount(path: path, isTracefs: isTracefs)
    }

    func read(_ relative: String) -> String? {
        let bytes = LiveCapture.readWhole(path + "/" + relative)
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// The kernel's own `uname -r`, or for a fixture the release it recorded next to its formats.
    public var kernelRelease: String {
        if !isTracefs, let saved = read("kernel-release") { return saved.trimmingCharacters(in: .whitespacesAndNewlines) }
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// Which dma, swiotlb and iommu events this kernel has (from tracefs's events/ directory).
public struct LiveEventInventory: Sendable {
    public static let systems = ["dma", "swiotlb", "iommu"]
    /// Event names per system, sorted; a system the kernel lacks is absent.
    public var events: [String: [String]] = [:]

    public init(mount: TracefsMount) {
        let fm = FileManager.default
        for system in Self.systems {
            let dir = mount.path + "/events/" + system
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else { continue }
            let withFormat = names.filter { fm.fileExists(atPath: dir + "/" + $0 + "/format") }.sorted()
            if !withFormat.isEmpty { events[system] = withFormat }
        }
    }

    public var present: [String] { Self.systems.filter { events[$0] != nil } }
    public var missing: [String] { Self.systems.filter { events[$0] == nil } }
    public var summary: String {
        present.map { "\($0) (\(events[$0]!.count): \(events[$0]!.joined(separator: ", ")))" }.joined(separator: "; ")
    }

    /// The dma events arrived in Linux 6.12; before that only swiotlb and iommu exist.
    public func check(release: String, allowPartial: Bool) throws {
        if events["dma"] == nil && !allowPartial {
            let others = present.isEmpty ? "none of swiotlb or iommu either" : "only " + present.joined(separator: " and ")
            throw LiveError("kernel \(release) has no dma events (they arrived in Linux 6.12; this kernel has \(others)); --allow-partial watches what exists")
        }
        if present.isEmpty {
            throw LiveError("kernel \(release) has none of the dma, swiotlb or iommu events: nothing to watch")
        }
    }
}

/// Instances a killed run left behind: `dma-trace-<pid>` whose pid is no longer alive.
public enum StaleInstances {
    public static let prefix = "dma-trace-"

    public static func find(mount: TracefsMount, excluding own: String? = nil) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: mount.path + "/instances") else { return [] }
        return names.filter { name in
            guard name != own, name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count)) else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }.sorted()
    }

    /// Switches the stale instance's tracing off and removes it; nil on success, else why not.
    public static func remove(_ name: String, mount: TracefsMount) -> String? {
        let dir = mount.path + "/instances/" + name
        guard let instance = tracefs_instance_alloc(mount.path, name) else { return "cannot allocate a handle for \(name)" }
        defer { tracefs_instance_free(instance) }
        _ = tracefs_trace_off(instance)
        if tracefs_instance_destroy(instance) == 0 { return nil }
        if !mount.isTracefs, dmatrace_remove_tree(dir) == 0 { return nil }
        return "cannot remove \(dir): \(String(cString: strerror(errno)))"
    }
}
