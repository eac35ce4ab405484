import Foundation

/// One supervised child process: its output collected from both pipes at once
/// (neither can fill up and stall it), a deadline after which its whole process
/// group is killed, and no child left behind whatever it did.
enum WorkerProcess {
    enum End: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
    }

    struct Finished {
        var end: End
        var stdout: Data
        var stderr: Data
    }

    /// nil deadline: no limit. Returns the OS error when the process could not be started.
    static func run(_ executable: String, _ arguments: [String], timeout: Double?) -> Result<Finished, OutputError> {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        var failure: Int32 = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment = ProcessInfo.processInfo.environment
        environment[Termination.supervisorVariable] = String(getpid())
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        // Pipes are made under the spawn lock and close on exec: a worker started
        // meanwhile on another thread must not hold this worker's pipe open, or
        // the end of its output would never be seen.
        let pid = Termination.spawnChild { () -> pid_t? in
            guard makePipe(&outPipe) else { failure = errno; return nil }
            guard makePipe(&errPipe) else {
                failure = errno
                outPipe.forEach { close($0) }
                return nil
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], STDOUT_FILENO)
            posix_spawn_file_actions_adddup2(&actions, errPipe[1], STDERR_FILENO)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            // Its own process group (killed as one), default signal handling, nothing blocked.
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for s in Termination.handledSignals + [SIGPIPE, SIGXFSZ] { sigaddset(&defaults, s) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            posix_spawnattr_setsigmask(&attributes, &unblocked)
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
            var pid: pid_t = 0
            failure = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            close(outPipe[1])
            close(errPipe[1])
            if failure != 0 {
                close(outPipe[0])
                close(errPipe[0])
                return nil
            }
            return pid
        }
        guard let pid else { return .failure(OutputError(destination: executable, code: failure)) }

        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var output = [Data(), Data()]
        var timedOut = !collect([outPipe[0], errPipe[0]], into: &output, until: deadline)
        if !timedOut { timedOut = !waitForExit(pid, until: deadline) }
        let status = Termination.reapChild(pid)
        let end: End
        if timedOut {
            end = .timedOut
        } else if status & 0x7f == 0 {
            end = .exited((status >> 8) & 0xff)
        } else {
            end = .signaled(status & 0x7f)
        }
        return .success(Finished(end: end, stdout: output[0], stderr: output[1]))
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// Reads every pipe to its end; false when the deadline came first.
    private static func collect(_ fds: [Int32], into output: inout [Data], until deadline: Date?) -> Bool {
        var polled = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        defer { polled.filter { $0.fd >= 0 }.forEach { close($0.fd) } }
        while polled.contains(where: { $0.fd >= 0 }) {
            guard let wait = milliseconds(until: deadline) else { return false }
            let ready = poll(&polled, nfds_t(polled.count), wait)
            if ready < 0 && errno != EINTR { return true }
            for i in polled.indices where polled[i].fd >= 0 && polled[i].revents != 0 {
                let n = read(polled[i].fd, &buffer, buffer.count)
                if n > 0 {
                    output[i].append(contentsOf: buffer[0..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(polled[i].fd)
                    polled[i].fd = -1
                }
            }
        }
        return true
    }

    /// Waits without reaping, so the process group can still be killed safely; false on the deadline.
    private static func waitForExit(_ pid: pid_t, until deadline: Date?) -> Bool {
        while true {
            var info = siginfo_t()
            let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT | WNOHANG)
            if r < 0 && errno != EINTR { return true }
            if r == 0 && info._sifields._sigchld.si_pid == pid { return true }
            guard milliseconds(until: deadline) != nil else { return false }
            usleep(5_000)
        }
    }

    /// -1 for no deadline, nil once it has passed.
    private static func milliseconds(until deadline: Date?) -> Int32? {
        guard let deadline else { return -1 }
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { return nil }
        return Int32(min(left * 1000 + 1, 3_600_000))
    }
}
