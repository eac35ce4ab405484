import Foundation

/// What must be undone before the process ends early, and the signal handling
/// that does it: SIGINT, SIGTERM and SIGHUP stop the work, kill the worker
/// processes (each its own process group, so their children go too), remove
/// temporary files, and then end the process by the same signal, so a shell
/// sees 130 / 143 / 129 and a script's loop stops as it would for any other tool.
///
/// The handler only writes the signal number to a pipe; a thread of our own
/// reads it and does the work, outside signal context. The registry lock makes
/// "create and register" one step: a signal never finds a temporary file or a
/// child it does not know about.
public enum Termination {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var temporaryFiles = Set<String>()
    nonisolated(unsafe) private static var childGroups = Set<pid_t>()
    nonisolated(unsafe) private static var installed = false
    nonisolated(unsafe) private static var cleanups: [@Sendable () -> Void] = []

    public static let handledSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Installs the handlers; call once, first thing in `main`.
    public static func install() {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        // A closed pipe and a file-size limit become errors at the write (EPIPE, EFBIG)
        // that the writer handles, instead of killing the process mid-way.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Only the handler's end must never block.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        signalWakeFD = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = noteSignal
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for s in handledSignals {
            // A signal ignored from the start stays ignored: nohup, and a shell's background jobs.
            var inherited = sigaction()
            sigaction(s, nil, &inherited)
            if unsafeBitCast(inherited.__sigaction_handler.sa_handler, to: Int.self) == 1 /* SIG_IGN */ { continue }
            sigaction(s, &action, nil)
        }
        // A parent may hand down a blocked mask (test harnesses do). Threads created from
        // here on inherit this thread's mask; a signal already pending now reaches the handler.
        var handled = sigset_t()
        sigemptyset(&handled)
        for s in handledSignals { sigaddset(&handled, s) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        // The cleanup thread takes signals too: it is never busy, so a signal is handled at
        // once even while the main thread sits in a long system call.
        let reader = fds[0]
        Thread.detachNewThread {
            // Foundation's threads may start with signals blocked: this one must take them.
            var mine = sigset_t()
            sigemptyset(&mine)
            for s in handledSignals { sigaddset(&mine, s) }
            pthread_sigmask(SIG_UNBLOCK, &mine, nil)
            var byte: UInt8 = 0
            while read(reader, &byte, 1) != 1 {}
            terminate(bySignal: Int32(byte))
        }
        watchSupervisor()
    }

    /// Set in a worker's environment to the audit's pid. A worker whose audit is gone (killed
    /// by SIGKILL, which it cannot clean up after) ends itself instead of running on alone.
    static let supervisorVariable = "DMA_TRACE_SUPERVISOR"

    private static func watchSupervisor() {
        guard let value = ProcessInfo.processInfo.environment[supervisorVariable], let supervisor = pid_t(value),
              getppid() == supervisor else { return }
        Thread.detachNewThread {
            while getppid() == supervisor { usleep(200_000) }
            terminate(bySignal: SIGTERM)
        }
    }

    /// Creates a file from a mkstemp template and remembers it. Close-on-exec is
    /// set under the lock workers are spawned under, so no worker inherits it.
    static func createTemporaryFile(template: String, destination: String) throws -> (fd: Int32, path: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(template.utf8CString)
        let fd = mkstemp(&bytes)
        guard fd >= 0 else { throw OutputError(destination: destination, code: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let path = String(cString: bytes)
        temporaryFiles.insert(path)
        return (fd, path)
    }

    /// Renames a finished temporary file into place. Under the lock: once the cleanup has
    /// begun the rename never happens, and once the rename has happened there is nothing
    /// left to clean.
    static func commitTemporaryFile(_ path: String, to destination: String) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        temporaryFiles.remove(path)
        return rename(path, destination) == 0 ? nil : errno
    }

    static func discardTemporaryFile(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        temporaryFiles.remove(path)
        unlink(path)
    }

    /// Work that must be undone when a signal ends the process, before its temporary files
    /// go (a live capture's tracefs instance). Runs on the cleanup thread, not in signal context.
    public static func atTermination(_ cleanup: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        cleanups.append(cleanup)
    }

    /// Starts a child (the leader of its own process group) and remembers it, in one step.
    static func spawnChild(_ spawn: () -> pid_t?) -> pid_t? {
        lock.lock()
        defer { lock.unlock() }
        guard let pid = spawn() else { return nil }
        childGroups.insert(pid)
        return pid
    }

    /// Kills whatever is left of the child's process group and reaps the child;
    /// returns its wait status. Call once the child has exited or must be stopped.
    static func reapChild(_ pid: pid_t) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        // The leader is not reaped yet, so its group id cannot have been reused.
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        childGroups.remove(pid)
        return status
    }

    /// The reader of standard output went away: end as quietly as `cat` does, by SIGPIPE.
    public static func endForClosedPipe() -> Never {
        terminate(bySignal: SIGPIPE)
    }

    private static func terminate(bySignal sig: Int32) -> Never {
        // Held until the end: nothing new is started or created from here on.
        lock.lock()
        for pid in childGroups {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        for cleanup in cleanups { cleanup() }
        for path in temporaryFiles { unlink(path) }
        signal(sig, SIG_DFL)
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, sig)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        kill(getpid(), sig)
        // The signal normally ends the process here; under a debugger or tracer it may take
        // a moment to be delivered.
        sleep(2)
        _exit(128 + sig)
    }
}

nonisolated(unsafe) private var signalWakeFD: Int32 = -1

/// Signal context: only async-signal-safe calls, errno preserved.
private func noteSignal(_ sig: Int32) {
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: sig)
    _ = write(signalWakeFD, &byte, 1)
    errno = saved
}
