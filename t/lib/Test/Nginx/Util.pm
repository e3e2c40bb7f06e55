package Test::Nginx::Util;

# Server management for the local Test::Nginx::Socket work-alike: global
# settings, nginx.conf generation, starting and stopping nginx, reading the
# error log, and the per-block driver.  Names, defaults and the generated
# configuration follow CPAN's Test::Nginx so that .t files run unchanged
# under either.

use strict;
use warnings;

our $VERSION = '0.29';

use base 'Exporter';

use Carp qw(croak);
use Config ();
use Cwd ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp qw(tempfile);
use IO::Socket::INET ();
use List::Util qw(shuffle);
use POSIX qw(SIGQUIT SIGKILL SIGTERM WNOHANG);
use Scalar::Util qw(looks_like_number);
use Time::HiRes qw(sleep time);
use Test::More ();

our @EXPORT = qw(
    env_to_nginx is_str check_accum_error_log is_running
    $NoLongString no_long_string $ServerAddr server_addr
    $ServerName server_name parse_time $UseStap verbose sleep_time
    bail_out add_cleanup_handler access_log_data error_log_data
    setup_server_root write_config_file get_canon_version
    get_nginx_version trim show_all_chars parse_headers run_tests
    run_test get_pid_from_pidfile $ServerPortForClient $ServerPort
    $NginxVersion $PidFile $ServRoot $ConfFile $RunTestHelper
    $CheckErrorLog $CheckShutdownErrorLog $FilterHttpConfig
    $NoNginxManager $RepeatEach $CheckLeak $Benchmark $BenchmarkWarmup
    add_block_preprocessor timeout worker_connections workers
    master_on master_off config_preamble repeat_each
    master_process_enabled log_level no_shuffle no_root_location
    html_dir server_root server_port server_port_for_client
    no_nginx_manager use_hup
);

# ---------------------------------------------------------------------
# Settings (environment first, then the Perl functions below)

our $Verbose        = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary    = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules    = $ENV{TEST_NGINX_LOAD_MODULES};
our $NoShuffle      = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $UseValgrind    = $ENV{TEST_NGINX_USE_VALGRIND};
our $UseHup         = $ENV{TEST_NGINX_USE_HUP};
our $Timeout        = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $NoNginxManager = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $EventType      = $ENV{TEST_NGINX_EVENT_TYPE};
our $PostponeOutput = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $ReusePort      = $ENV{TEST_NGINX_REUSE_PORT};
our $WorkerUser     = $ENV{TEST_NGINX_WORKER_USER};
our $TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $LogLevel       = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled  = 'on';
our $ServerPort     = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                      || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $ServerAddr     = '127.0.0.1';
our $ServerName     = 'localhost';
our $Workers        = 1;
our $WorkerConnections = 64;
our $RepeatEach     = 1;
our $NoRootLocation = 0;
our $NoLongString;
our $ConfigPreamble = '';
our $FilterHttpConfig;

# Not implemented here; kept so that code referring to them still compiles.
our $UseStap;
our $CheckLeak      = 0;
our $Benchmark      = 0;
our $BenchmarkWarmup = 0;

# Extensions of this implementation (not in CPAN's Test::Nginx):
# how long to wait for nginx to exit after SIGQUIT before SIGKILL, and for
# the listening port to accept after a start.
our $QuitTimeout    = $ENV{TEST_NGINX_QUIT_TIMEOUT} || 10;
our $StartTimeout   = $ENV{TEST_NGINX_START_TIMEOUT}
                      || ($UseValgrind ? 60 : 10);
our $ValgrindErrorCode = 99;

if (defined $WorkerUser && $WorkerUser !~ /^\w+(?:\s+\w+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

if ($UseValgrind) {
    # nginx must stay in the foreground so that valgrind sees it exit.
    $DaemonEnabled = 'off';
}

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
                || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
our $ValgrindLog = File::Spec->catfile($LogDir, 'valgrind.log');

# Hooks filled in by Test::Nginx::Socket.
our $RunTestHelper;
our $CheckErrorLog;
our $CheckShutdownErrorLog;

our $NginxVersion;
our $NginxRawVersion;
our $ErrLogFilePos = 0;
our $PrevBlock;
our $PrevConfig;
our $ChildPid;           # nginx run in the foreground (valgrind mode)
our $InSubprocess;
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;
my $FirstTime = 1;
my $WarnedHup;

# ---------------------------------------------------------------------
# Setters and getters exported to the test files

sub no_long_string () { $NoLongString = 1 }
sub no_shuffle () { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub no_nginx_manager () { $NoNginxManager = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub use_hup () { $UseHup = 1 }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub config_preamble ($) { $ConfigPreamble = shift }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub html_dir () { $HtmlDir }
sub server_root () { $ServRoot }
sub sleep_time { $TestNginxSleep }
sub verbose { $Verbose }

# Each of these sets the value when given one, and returns it otherwise.
sub _accessor {
    my $ref = shift;
    if (@_) {
        $$ref = shift;
        return;
    }
    return $$ref;
}

sub server_addr (@) { _accessor(\$ServerAddr, @_) }
sub server_name (@) { _accessor(\$ServerName, @_) }
sub server_port (@) { _accessor(\$ServerPort, @_) }
sub server_port_for_client (@) { _accessor(\$ServerPortForClient, @_) }
sub timeout (@) { _accessor(\$Timeout, @_) }
sub workers (@) { _accessor(\$Workers, @_) }
sub worker_connections (@) { _accessor(\$WorkerConnections, @_) }
sub log_level (@) { _accessor(\$LogLevel, @_) }

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub master_process_enabled (@) {
    if (@_) {
        $MasterProcessEnabled = $_[0] ? 'on' : 'off';
        return;
    }
    return $MasterProcessEnabled;
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

# ---------------------------------------------------------------------
# Small helpers

sub is_str (@) {
    my ($got, $expected, $desc) = @_;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (!$NoLongString && eval { require Test::LongString; 1 }) {
        return Test::LongString::is_string($got, $expected, $desc);
    }
    return Test::More::is($got, $expected, $desc);
}

sub parse_time ($) {
    my $t = shift;
    return $t unless defined $t;
    if ($t =~ s/([^_a-zA-Z])ms$/$1/) {
        return $t / 1000;
    }
    $t =~ s/([^_a-zA-Z])s$/$1/;
    return $t;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\t/\\t/g;
    return $s;
}

# "Name: value" lines; "!Name" means the header must be absent (undef).
sub parse_headers ($) {
    my $text = shift;
    my %headers;
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            $headers{$line} = undef;
            next;
        }
        my ($key, $val) = split /\s*:\s*/, $line, 2;
        $headers{$key} = $val;
    }
    return \%headers;
}

sub get_canon_version (@) {
    return sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return (-f $cmd && -x _) ? $cmd : undef;
    }
    for my $dir (split /\Q$Config::Config{path_sep}\E/, $ENV{PATH} || '') {
        next if $dir eq '';
        my $path = File::Spec->catfile($dir, $cmd);
        return $path if -f $path && -x _;
    }
    return undef;
}

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: ",
                 $out // '');
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return get_canon_version($1, $2, $3);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# $TEST_NGINX_FOO is replaced by the environment's value;
# $TEST_NGINX_RAND_PORT_N by a free port, the same one within a block.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $val = $rand_ports->{$var} //= pick_free_port($name,
                                                          $rand_ports);
        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }ge;

    return $text;
}

sub pick_free_port ($$) {
    my ($name, $taken) = @_;
    my %used = map { $_ => 1 } $ServerPort, values %$taken;
    for (1 .. 1000) {
        my $port = 1985 + int rand 63000;
        next if $used{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => $ServerAddr,
                                         LocalPort => $port,
                                         Proto => 'tcp');
        next unless $sock;
        close $sock;
        return $port;
    }
    bail_out("$name - Cannot find an available listening port number.\n");
}

# ---------------------------------------------------------------------
# Processes

sub proc_stat ($) {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return;
    my $line = <$in>;
    close $in;
    return unless defined $line && $line =~ /\)\s+(\S)\s+(\d+)\s+(\d+)/;
    return { state => $1, ppid => $2, pgrp => $3 };
}

# Exit statuses of our own children, kept when reaped while polling.
my %Reaped;

sub reap ($$) {
    my ($pid, $flags) = @_;
    my $r = waitpid($pid, $flags);
    $Reaped{$pid} = $? if $r == $pid;
    return $r;
}

# A zombie (exited, not yet reaped) counts as not running: a daemonized
# nginx is not our child and may never be reaped where PID 1 does not.
sub is_running ($) {
    my $pid = shift;
    return 0 unless $pid && $pid =~ /^\d+$/ && kill(0, $pid);
    my $st = proc_stat($pid);
    if ($st && $st->{state} eq 'Z') {
        reap($pid, WNOHANG);
        return 0;
    }
    return 1;
}

# A stale pid file may name a PID since reused by another program: only
# an nginx started on this server root (its command line holds -p ROOT/)
# is signalled.  A zombie has an empty command line.
sub is_our_nginx ($) {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/cmdline" or return 1;
    my $cmd = do { local $/; <$in> } // '';
    close $in;
    return $cmd eq '' || index($cmd, "$ServRoot/") >= 0;
}

sub group_members ($) {
    my $pgrp = shift;
    my @pids;
    opendir my $dh, '/proc' or return;
    for my $ent (readdir $dh) {
        next unless $ent =~ /^\d+$/ && $ent != $$;
        my $st = proc_stat($ent) or next;
        push @pids, $ent if $st->{pgrp} == $pgrp && $st->{state} ne 'Z';
    }
    closedir $dh;
    return @pids;
}

sub wait_gone ($$) {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (is_running($pid)) {
        reap($pid, WNOHANG);
        return 0 if time >= $deadline;
        sleep 0.02;
    }
    reap($pid, WNOHANG);
    return 1;
}

# Stop nginx (master or single process) with SIGQUIT, then SIGKILL the
# whole process group if it does not exit in time.  A daemonized nginx
# leads its own session, so its group holds exactly its processes.
sub kill_process ($$$) {
    my ($pid, $wait, $name) = @_;
    return unless $pid;
    if (!is_our_nginx($pid)) {
        warn "$name - process $pid is not our nginx; not signalling it\n";
        return;
    }

    my $st = proc_stat($pid);
    my $own_group = ($st && $st->{pgrp} == $pid && $pid != getpgrp(0));

    if (is_running($pid)) {
        warn "sending QUIT signal to $pid\n" if $Verbose;
        kill SIGQUIT, $pid;
        if (!wait_gone($pid, $wait ? $QuitTimeout : 0.5)) {
            warn "$name - timeout when waiting for the process $pid "
                 . "to exit\n";
            kill SIGKILL, ($own_group ? -$pid : $pid);
            wait_gone($pid, 5);
        }
    }

    if ($own_group) {
        my @left = group_members($pid);
        if (@left) {
            warn "$name - killing left-over processes @left\n";
            kill SIGKILL, @left;
            wait_gone($_, 2) for @left;
        }
    }
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub stop_nginx ($) {
    my $name = shift;

    if (defined $ChildPid) {
        kill_process($ChildPid, 1, $name);
        reap($ChildPid, 0);
        my $status = delete $Reaped{$ChildPid};
        check_valgrind($name, $status) if $UseValgrind;
        undef $ChildPid;
    }

    if (-f $PidFile) {
        my $pid = get_pid_from_pidfile($name);
        kill_process($pid, 1, $name) if $pid && is_running($pid);
        unlink $PidFile if -f $PidFile && !($pid && is_running($pid));
    }
}

sub check_valgrind ($$) {
    my ($name, $status) = @_;
    my $report = '';
    if (open my $in, '<', $ValgrindLog) {
        $report = do { local $/; <$in> } // '';
        close $in;
    }
    my $code = defined $status ? ($status >> 8) : 0;
    if ($code == $ValgrindErrorCode || $report =~ /^==\d+==/m) {
        Test::More::fail("$name - valgrind reported errors");
        Test::More::diag($report) if $report ne '';
    }
    unlink $ValgrindLog;
}

sub cleanup () {
    warn "cleaning up everything\n" if $Verbose;
    $_->() for @CleanupHandlers;
    if (defined $ChildPid) {
        stop_nginx('cleanup');
    }
}

# ---------------------------------------------------------------------
# Server root and configuration

sub setup_server_root ($) {
    my $first_time = shift;

    if (-d $ServRoot) {
        # Only remove what this harness creates, so that a mistaken
        # TEST_NGINX_SERVROOT cannot wipe real data.
        remove_tree($ConfDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }

    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        make_path($dir) unless -d $dir;
        bail_out("Failed to do mkdir $dir\n") unless -d $dir;
    }

    my $index = "$HtmlDir/index.html";
    open my $out, '>', $index
        or bail_out("Can't open $index for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

# --- user_files: ">>> name [touch-date]" headers, or an eval'd array of
# [name, body, date].
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
                next;
            }
            $list[-1][1] .= $line if @list;
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1);
        }
        $body = expand_env_in_text($body, $name, $rand_ports);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - Failed to touch $path\n");
        }
    }
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $main_config = expand_env_in_text($block->main_config, $name,
                                         $rand_ports) // '';
    my $post_main_config = expand_env_in_text($block->post_main_config,
                                              $name, $rand_ports) // '';
    my $http_config = expand_env_in_text($block->http_config, $name,
                                         $rand_ports) // '';
    $http_config = $FilterHttpConfig->($http_config) if $FilterHttpConfig;
    $config //= '';

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    my $server_name = $block->server_name // $ServerName;

    my $extra_http_config = '';
    if (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/) {
        bail_out("Bad TEST_NGINX_POSTPONE_OUTPUT value: $PostponeOutput\n")
            if $PostponeOutput !~ /^\d+$/;
        $extra_http_config = "    postpone_output $PostponeOutput;\n";
    }

    my $conf = '';

    if ($LoadModules) {
        for my $mod (grep { $_ ne '' } split /\s+/, $LoadModules) {
            $conf .= "load_module $mod;\n";
        }
    }

    $conf .= "worker_processes  $Workers;\n"
           . "daemon $DaemonEnabled;\n"
           . "master_process $MasterProcessEnabled;\n"
           . "error_log $err_log_file $LogLevel;\n"
           . "pid       $PidFile;\n";

    for my $v (qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN
                  MOCKEAGAIN_WRITE_TIMEOUT_PATTERN LD_PRELOAD
                  LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES
                  DYLD_FORCE_FLAT_NAMESPACE))
    {
        $conf .= "env $v;\n";
    }

    for my $v (@EnvToNginx) {
        $conf .= $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }

    my $listen_opts = $ReusePort ? ' reuseport' : '';
    (my $quoted_name = $server_name) =~ s/\\/\\\\/g;
    $quoted_name =~ s/'/\\'/g;

    $conf .= <<"_EOC_";

$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;
$extra_http_config
$http_config

    server {
        listen          $ServerPort$listen_opts;
        server_name     '$quoted_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

_EOC_

    if (!$NoRootLocation) {
        $conf .= <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    }

    $conf .= "    }\n}\n\n$post_main_config\n\n"
           . "events {\n    accept_mutex off;\n"
           . "    worker_connections  $WorkerConnections;\n";
    $conf .= "    use $EventType;\n" if $EventType;
    $conf .= "}\n";
    $conf .= "env ASAN_OPTIONS;\nenv MOCKNOEAGAIN_VERBOSE;\n"
           . "env MOCKNOEAGAIN;\n";

    if (defined $WorkerUser) {
        $conf .= "user $WorkerUser;\n";
    } elsif ($> == 0) {
        # Workers would otherwise run as nobody and could not write the
        # servroot, which belongs to root here.
        $conf .= "user root;\n";
    }

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $conf;
    close $out;
}

# ---------------------------------------------------------------------
# Logs

sub read_log_lines ($$) {
    my ($file, $pos_ref) = @_;
    sleep $TestNginxSleep * 3;   # lines logged after the response is sent
    open my $in, '<', $file or return [];
    if ($pos_ref && $$pos_ref > 0) {
        seek $in, $$pos_ref, 0;
    }
    my @lines = <$in>;
    $$pos_ref = tell($in) if $pos_ref;
    close $in;
    return \@lines;
}

sub error_log_data () {
    if ($CheckAccumErrLog) {
        return read_log_lines($ErrLogFile, undef);
    }
    return read_log_lines($ErrLogFile, \$ErrLogFilePos);
}

sub access_log_data () {
    return read_log_lines($AccLogFile, undef);
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return unless defined $block && defined $block->shutdown_error_log
                  && $CheckShutdownErrorLog;
    $CheckShutdownErrorLog->($block, $ENV{TEST_NGINX_NO_CLEAN} ? 1 : 0);
}

# ---------------------------------------------------------------------
# Starting nginx

sub nginx_command () {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    # Send start-up errors (before error_log takes effect) to the
    # servroot's error.log, as a nginx built with a relative default
    # error log path does; -e exists since nginx 1.19.5.
    if (defined $NginxVersion && $NginxVersion >= 1.019005) {
        push @cmd, '-e', $ErrLogFile;
    }
    return @cmd;
}

sub spawn ($$$) {
    my ($cmd, $err_fh, $new_group) = @_;
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        setpgrp(0, 0) if $new_group;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>&', $err_fh if $err_fh;
        { no warnings 'exec'; exec { $cmd->[0] } @$cmd; }
        print STDERR "exec $cmd->[0] failed: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

# Runs nginx in the usual daemon mode; returns (wait status, stderr).
sub run_nginx_daemon ($) {
    my $name = shift;
    my ($err_fh, $err_file) = tempfile('test-nginx-XXXXXX', TMPDIR => 1,
                                       UNLINK => 1);
    my @cmd = nginx_command();
    warn "command: @cmd\n" if $Verbose;
    my $pid = spawn(\@cmd, $err_fh, 0);

    my $deadline = time + $StartTimeout;
    my $status;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            $status = $?;
            last;
        }
        if (time > $deadline) {
            warn "$name - nginx did not return; is \"daemon off\" set?\n";
            kill SIGKILL, $pid;
            waitpid($pid, 0);
            $status = $?;
            last;
        }
        sleep 0.01;
    }

    close $err_fh;
    my $stderr = '';
    if (open my $in, '<', $err_file) {
        $stderr = do { local $/; <$in> } // '';
        close $in;
    }
    unlink $err_file;
    return ($status, $stderr);
}

sub wait_for_pidfile ($) {
    my $secs = shift;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $pid = get_pid_from_pidfile('');
        return $pid if $pid;
        sleep 0.01;
    }
    return undef;
}

sub start_nginx_valgrind ($) {
    my $name = shift;
    my @opts;
    if ($UseValgrind =~ /^\d+$/) {
        # Count as errors only the leak kinds that are shown.
        @opts = qw(--tool=memcheck --leak-check=full
                   --show-possibly-lost=no --errors-for-leak-kinds=definite
                   --num-callers=100 --gen-suppressions=all);
        push @opts, '--suppressions=valgrind.suppress'
            if -f 'valgrind.suppress';
    } else {
        @opts = split ' ', $UseValgrind;
    }
    push @opts, "--error-exitcode=$ValgrindErrorCode"
        unless grep { /^--error-exitcode/ } @opts;
    push @opts, "--log-file=$ValgrindLog"
        unless grep { /^--log-(?:file|fd|socket)/ } @opts;

    my @cmd = ('valgrind', '-q', @opts, nginx_command());
    warn "$name\n";
    warn "command: @cmd\n" if $Verbose;
    $ChildPid = spawn(\@cmd, undef, 1);

    my $deadline = time + $StartTimeout;
    while (time < $deadline) {
        if (reap($ChildPid, WNOHANG) == $ChildPid) {
            my $status = delete $Reaped{$ChildPid};
            undef $ChildPid;
            bail_out("$name - nginx under valgrind exited at start "
                     . "(status $status); see $ErrLogFile");
        }
        return if get_pid_from_pidfile($name) && port_open();
        sleep 0.05;
    }
    warn "$name - nginx under valgrind not ready after "
         . "$StartTimeout s\n";
}

sub port_open () {
    my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                     PeerPort => $ServerPortForClient,
                                     Proto => 'tcp', Timeout => 1);
    return 0 unless $sock;
    close $sock;
    return 1;
}

sub start_nginx ($) {
    my $name = shift;

    if ($UseValgrind) {
        start_nginx_valgrind($name);
        return;
    }

    my $deadline = time + $StartTimeout;
    while (1) {
        $ErrLogFilePos = 0;
        my ($status, $stderr) = run_nginx_daemon($name);
        if ($status == 0) {
            wait_for_pidfile($StartTimeout)
                or warn "$name - no pid file $PidFile after start\n";
            return;
        }

        # The previous nginx may still hold the port for a moment.
        if ($stderr =~ /Address already in use/ && time < $deadline) {
            sleep 0.2;
            next;
        }

        my $cmd = join ' ', nginx_command();
        bail_out("$name - Cannot start nginx using command \"$cmd\" "
                 . "(status code $status): $stderr");
    }
}

# --- must_die: nginx must fail at start; returns nothing, runs the tests.
sub run_must_die ($$$) {
    my ($block, $must_die, $dry_run) = @_;
    my $name = $block->name;

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        my ($status, $stderr) = run_nginx_daemon($name);
        my $exit_code = $status >> 8;

        if (!defined $NginxVersion || $NginxVersion < 1.019005) {
            # Without -e the start-up errors only went to stderr.
            if (open my $out, '>>', $ErrLogFile) {
                print $out $stderr;
                close $out;
            }
        }

        if ($status & 127) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($must_die, $exit_code,
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        $CheckErrorLog->($block, undef, $dry_run, $i, 0);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            my $pid = wait_for_pidfile(2);
            kill_process($pid, 1, $name) if $pid;
        }
    }
}

# ---------------------------------------------------------------------
# The driver

sub run_tests () {
    $NginxVersion = get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};

    # An interrupted run must not leave nginx behind.
    for my $sig (qw(INT TERM HUP)) {
        next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub { warn "caught SIG$sig, stopping nginx\n";
                           exit 1; };
    }

    if ($UseHup && !$WarnedHup++) {
        warn "WARNING: TEST_NGINX_USE_HUP is not supported here; "
             . "nginx is restarted for each block\n";
    }

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', "$0 " . $block->name);
        run_test($block);
        $PrevBlock = $block;
    }

    cleanup();
}

# Returns (tests to skip, should skip, reason) from the skip_* sections.
sub skip_spec ($) {
    my $block = shift;
    my $name = $block->name;
    my ($count, $skip, $reason);

    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $count = $1;
            $reason = 'skip_eval';
            my $code = $2;
            $skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code "
                     . "\"$code\": $@") if $@;
        }
    }

    my $ver_ok = sub {
        my ($op, $v) = @_;
        return 0 unless defined $NginxVersion;
        return eval "$NginxVersion $op $v";
    };

    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                   (?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        $count = $1;
        my $op = $2;
        my $v = get_canon_version($3, $4, $5);
        $reason = $6 || "nginx version $op $3.$4.$5";
        $skip = 1 if (!defined $NginxVersion && $op =~ /^</)
                     || $ver_ok->($op, $v);
    } elsif (defined(my $spec2 = $block->skip_nginx2)) {
        $spec2 =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                    \s*(or|and)\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                    (?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx2 spec: $spec2");
        $count = $1;
        my ($a, $b) = ($ver_ok->($2, get_canon_version($3, $4, $5)),
                       $ver_ok->($7, get_canon_version($8, $9, $10)));
        $reason = $11;
        $skip = 1 if !defined $NginxVersion
                     || ($6 eq 'or' ? ($a || $b) : ($a && $b));
    }

    return ($count, $skip, $reason // 'various reasons');
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $first_time = $FirstTime;
    undef $FirstTime;

    my $rand_ports = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);
    my $dry_run = 0;

    local $LogLevel = $block->log_level || $LogLevel;
    local $UseValgrind = $UseValgrind;
    local $DaemonEnabled = $DaemonEnabled;

    my $must_die = $block->must_die;
    if (defined $must_die && $UseValgrind) {
        undef $UseValgrind;
        $DaemonEnabled = 'on';
    }

    my $should_restart = 1;
    if (!defined $config) {
        if (!$NoNginxManager && !defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one. "
                     . "Use TEST_NGINX_NO_NGINX_MANAGER ?");
        }
        # The previous block's nginx keeps serving.
        $should_restart = 0;
    } elsif ($NoNginxManager) {
        Test::More::diag("NO_NGINX_MANAGER activated: config for $name "
                         . "ignored");
        $should_restart = 0;
    }

    my ($tests_to_skip, $should_skip, $skip_reason) = skip_spec($block);

    my ($should_todo, $todo_reason);
    if (defined(my $todo = $block->todo)) {
        $todo =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $todo");
        ($should_todo, $tests_to_skip, $todo_reason) = (1, $1, $2);
    }

    if (!$NoNginxManager && !$should_skip && $should_restart) {
        $PrevConfig = $config;

        stop_nginx($name);
        check_prev_block_shutdown_error_log();

        setup_server_root($first_time);
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);

        if (!can_run($NginxBinary)) {
            bail_out("$name - Cannot find the nginx executable in the "
                     . "PATH environment");
        }

        if (defined $must_die) {
            run_must_die($block, $must_die, $dry_run);
            return;
        }

        start_nginx($name);
    }

    # In this package, as CPAN's Test::Nginx does (see t/lib/README.md).
    if ($block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (1 .. $RepeatEach) {
        write_user_files($block, $rand_ports) if $i > 1;

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $skip_reason", $tests_to_skip);
            }
        } elsif ($should_todo) {
            TODO: {
                Test::More::todo_skip("$name - $todo_reason",
                                      $tests_to_skip);
            }
        } else {
            $RunTestHelper->($block, $dry_run, $i - 1);
        }
    }

    if (my $total = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile && open my $out, '>>', $total) {
            print $out "\n=== $0 $name\n";
            if (open my $in, '<', $ErrLogFile) {
                print $out $_ while <$in>;
                close $in;
            }
            close $out;
        }
    }

    # Under valgrind nginx is stopped after each block so that its
    # report belongs to that block.
    if ($UseValgrind && defined $ChildPid) {
        stop_nginx($name);
    }
}

END {
    return if $InSubprocess;
    local $?;

    cleanup();

    if (!$ENV{TEST_NGINX_NO_CLEAN} && -f $PidFile) {
        my $pid = get_pid_from_pidfile('END');
        if ($pid && is_running($pid)) {
            kill_process($pid, 1, 'END');
        } else {
            unlink $PidFile;
        }
    }

    check_prev_block_shutdown_error_log();
}

1;
