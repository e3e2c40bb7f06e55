package Kle::Emulator;

# The Kubernetes API emulator (t/emulator/kube_emulator.py) for the
# Test::Nginx suites: one emulator per .t file, started when this module is
# loaded and stopped at the end of the run, after nginx.
#
#     use Kle::Emulator;            # its END stops nginx, then the emulator
#     use Test::Nginx::Socket;
#
#     leader_election web {
#         lock        leases default/web;
#         api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
#     }
#
# Environment set for the blocks (Test::Nginx expands $TEST_NGINX_*):
#   TEST_NGINX_KUBECONFIG      the emulator's kubeconfig (token user)
#   TEST_NGINX_API_PORT        its HTTPS port
#   TEST_NGINX_API_URL         https://127.0.0.1:PORT
#   TEST_NGINX_API_CA          its CA certificate
#   TEST_NGINX_API_TOKEN_FILE  a file holding the default bearer token
#   TEST_NGINX_API_TOKEN       that token
#   TEST_NGINX_ADMIN_PORT      the admin API on plain HTTP
#   TEST_NGINX_EMULATOR_DIR    its directory (certificates, emulator.log)
#
# The admin API is spoken over plain HTTP (--admin-port), so no TLS is
# needed in Perl.  Every helper dies on an unexpected admin answer: a broken
# emulator must not look like a broken module.

use strict;
use warnings;

use Kle::Harness ();

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec ();
use File::Temp qw(tempdir);
use HTTP::Tiny ();
use JSON::PP ();
use POSIX qw(WNOHANG SIGTERM SIGKILL);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    get_object put_object delete_object lease_spec put_lease
    add_fault clear_faults delete_fault emulator_config compact close_watches events_in
    requests last_seq clear_requests reset_emulator
    forbid clear_forbid add_token revoke_token
    wait_until nginx_get nginx_status nginx_var log_lines answered_promptly
    json_decode json_encode_canon is_microtime
);

our $Json = JSON::PP->new->utf8->canonical;

my $Here = dirname(File::Spec->rel2abs(__FILE__));
my $Script = File::Spec->catfile($Here, '..', '..', 'emulator',
                                 'kube_emulator.py');
my $Owner = $$;
my ($Dir, $Pid, $Http, $AdminBase);

sub dir () { $Dir }
sub pid () { $Pid }

sub _slurp ($) {
    my $file = shift;
    open my $in, '<', $file or return undef;
    local $/;
    my $s = <$in>;
    close $in;
    return $s;
}

# Runs a Python script in a process group of its own (^C on the test does
# not reach it before nginx has released its lock) that still ends with
# this process: its stdin is a pipe from here, and a thread ends it with
# SIGTERM at EOF.  Returns its pid.
my @Lifelines;

sub spawn_watched ($@) {
    my ($out, $script, @args) = @_;
    pipe my $r, my $w or die "pipe: $!\n";
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        close $w;
        open STDIN, '<&', $r or POSIX::_exit(127);
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        my $watch = 'import os, runpy, signal, sys, threading; '
            . 'threading.Thread(target=lambda: (sys.stdin.read(), '
            . 'os.kill(os.getpid(), signal.SIGTERM)), daemon=True).start(); '
            . 'sys.argv = sys.argv[1:]; '
            . 'runpy.run_path(sys.argv[0], run_name="__main__")';
        exec 'python3', '-c', $watch, $script, @args or POSIX::_exit(127);
    }
    close $r;
    push @Lifelines, $w;
    return $pid;
}

sub start () {
    return if $Pid;

    $Dir = tempdir('kle-emulator-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN});

    my $out = File::Spec->catfile($Dir, 'emulator.out');
    $Pid = spawn_watched($out, $Script, '--dir', $Dir, '--admin-port', '0');

    my $deadline = time + 30;
    my $port_file = File::Spec->catfile($Dir, 'port');
    until (-s $port_file) {
        if (waitpid($Pid, WNOHANG) == $Pid) {
            undef $Pid;
            die "kube_emulator.py exited at start:\n"
                . (_slurp($out) // '') . "\n";
        }
        if (time > $deadline) {
            stop();
            die "kube_emulator.py did not start in 30 s\n";
        }
        sleep 0.05;
    }

    my $port = _slurp($port_file);
    my $admin = _slurp(File::Spec->catfile($Dir, 'admin_port'));
    my $token = _slurp(File::Spec->catfile($Dir, 'token'));
    s/\s+//g for $port, $admin, $token;

    my $token_file = File::Spec->catfile($Dir, 'token.txt');
    open my $fh, '>', $token_file or die "$token_file: $!\n";
    print $fh $token;
    close $fh;

    $Http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    $AdminBase = "http://127.0.0.1:$admin/_emulator";

    $ENV{TEST_NGINX_KUBECONFIG} = File::Spec->catfile($Dir, 'kubeconfig');
    $ENV{TEST_NGINX_API_PORT} = $port;
    $ENV{TEST_NGINX_API_URL} = "https://127.0.0.1:$port";
    $ENV{TEST_NGINX_API_CA} = File::Spec->catfile($Dir, 'ca.crt');
    $ENV{TEST_NGINX_API_TOKEN_FILE} = $token_file;
    $ENV{TEST_NGINX_API_TOKEN} = $token;
    $ENV{TEST_NGINX_ADMIN_PORT} = $admin;
    $ENV{TEST_NGINX_EMULATOR_DIR} = $Dir;
}

sub stop () {
    return unless $Pid && $$ == $Owner;
    kill SIGTERM, $Pid;
    my $deadline = time + 5;
    while (waitpid($Pid, WNOHANG) != $Pid) {
        if (time > $deadline) {
            kill SIGKILL, $Pid;
            waitpid($Pid, 0);
            last;
        }
        sleep 0.02;
    }
    undef $Pid;
}

# ---------------------------------------------------------------------
# The admin API

sub json_decode ($) {
    my $s = shift;
    return undef unless defined $s && length $s;
    return eval { $Json->decode($s) };
}

# Canonical JSON text (sorted keys), for exact comparisons.
sub json_encode_canon ($) {
    return $Json->encode(shift);
}

# (code, decoded body); dies unless the code is one of @ok.
sub admin ($$;$@) {
    my ($method, $path, $body, @ok) = @_;
    @ok = (200, 201) unless @ok;
    my %opts;
    if (defined $body) {
        $opts{content} = ref $body ? $Json->encode($body) : $body;
        $opts{headers} = { 'Content-Type' => 'application/json' };
    }
    my $res = $Http->request($method, "$AdminBase$path", \%opts);
    if (!grep { $_ == $res->{status} } @ok) {
        die "emulator admin $method $path: $res->{status} "
            . ($res->{content} // '') . "\n";
    }
    return ($res->{status}, json_decode($res->{content}));
}

sub _object_path ($$$) {
    my ($kind, $ns, $name) = @_;
    die "kind must be leases, configmaps or events, not $kind\n"
        unless $kind =~ /^(?:leases|configmaps|events)\z/;
    return "/objects/$kind/$ns/$name";
}

# The object as stored (decoded JSON), undef if there is none.
sub get_object ($$$) {
    my ($code, $obj) = admin('GET', _object_path($_[0], $_[1], $_[2]),
                             undef, 200, 404);
    return $code == 200 ? $obj : undef;
}

# The Lease's spec, undef if there is no such Lease.
sub lease_spec ($$) {
    my $obj = get_object('leases', $_[0], $_[1]);
    return $obj ? $obj->{spec} : undef;
}

# Stores $obj (hash or JSON text) as given: seeds odd records.
sub put_object ($$$$) {
    my ($kind, $ns, $name, $obj) = @_;
    my (undef, $stored) = admin('PUT', _object_path($kind, $ns, $name),
                                $obj);
    return $stored;
}

# Seeds a Lease (coordination.k8s.io/v1) as another holder would have left
# it: put_lease($name, holder => H, secs => S, transitions => N, ...), with
# acquireTime = renewTime = 2026-01-01T00:00:00.000000Z.  Options:
#   ns => NS                  namespace (default "default")
#   annotations => {...}      metadata.annotations
#   address => A              adds leader-election.nginx.org/address = A and
#                             .../address-holder = address_holder (default H)
# metadata.annotations is written only if annotations or address is given.
sub put_lease ($@) {
    my ($name, %o) = @_;
    for my $k (qw(holder secs transitions)) {
        die "put_lease: $k is required\n" unless defined $o{$k};
    }
    my $ns = $o{ns} // 'default';
    my %meta = (name => $name, namespace => $ns);
    if ($o{annotations} || defined $o{address}) {
        my %ann = %{ $o{annotations} || {} };
        if (defined $o{address}) {
            $ann{'leader-election.nginx.org/address'} = $o{address};
            $ann{'leader-election.nginx.org/address-holder'} =
                $o{address_holder} // $o{holder};
        }
        $meta{annotations} = \%ann;
    }
    return put_object('leases', $ns, $name, {
        apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
        metadata => \%meta,
        spec => { holderIdentity => $o{holder},
                  leaseDurationSeconds => $o{secs},
                  acquireTime => '2026-01-01T00:00:00.000000Z',
                  renewTime => '2026-01-01T00:00:00.000000Z',
                  leaseTransitions => $o{transitions} },
    });
}

sub delete_object ($$$) {
    admin('DELETE', _object_path($_[0], $_[1], $_[2]), undef, 200, 404);
    return;
}

# add_fault(kind => 'status', code => 500, ...) or add_fault(\%f, \%g):
# returns the ids.
sub add_fault {
    my $spec = ref $_[0] ? (@_ == 1 ? $_[0] : [@_]) : {@_};
    my (undef, $res) = admin('POST', '/faults', $spec);
    return map { $_->{id} } @{ $res->{faults} || [] };
}

# emulator_config(bookmark_interval => 0.5, ...): sets, and returns the
# whole configuration (with the current resourceVersion).
sub emulator_config (@) {
    my (undef, $cfg) = admin('POST', '/config', {@_});
    return $cfg;
}

# Forget the watch history: watches from older resourceVersions get 410.
sub compact () {
    admin('POST', '/compact');
    return;
}

# End every open watch; clients resume from the last resourceVersion seen.
sub close_watches () {
    admin('POST', '/close-watches');
    return;
}

# The Events stored in namespace $ns, oldest first.
sub events_in ($) {
    my ($ns) = @_;
    my (undef, $all) = admin('GET', '/objects');
    return [ sort { $a->{metadata}{resourceVersion}
                    <=> $b->{metadata}{resourceVersion} }
             grep { ($_->{kind} // '') eq 'Event'
                    && $_->{metadata}{namespace} eq $ns }
             @{ $all->{items} || [] } ];
}

sub clear_faults () {
    admin('DELETE', '/faults');
    return;
}

sub delete_fault ($) {
    admin('DELETE', "/faults/$_[0]", undef, 200, 404);
    return;
}

# The request log, oldest first; since => SEQ, method => M and path => a
# substring of the path narrow it down.
sub requests (@) {
    my %f = @_;
    my $q = defined $f{since} ? "?since=$f{since}" : '';
    my (undef, $res) = admin('GET', "/requests$q");
    my @r = @{ $res->{requests} || [] };
    @r = grep { $_->{method} eq $f{method} } @r if defined $f{method};
    @r = grep { index($_->{path}, $f{path}) >= 0 } @r if defined $f{path};
    return \@r;
}

# The seq of the last logged request, 0 if the log is empty: a "since" for
# requests(since => ...) taken before what a block then checks.
sub last_seq () {
    my $r = requests();
    return @$r ? $r->[-1]{seq} : 0;
}

sub clear_requests () {
    admin('DELETE', '/requests');
    return;
}

# Objects, faults, log, forbid rules and tokens back to the start.
sub reset () {
    admin('POST', '/reset');
    return;
}

sub reset_emulator () { Kle::Emulator::reset() }

# forbid(resource => 'leases', name => 'x', verbs => ['update'])
sub forbid (@) {
    admin('POST', '/forbid', {@_});
    return;
}

sub clear_forbid () {
    admin('DELETE', '/forbid');
    return;
}

sub add_token ($;$) {
    my ($token, $user) = @_;
    admin('POST', '/tokens', { token => $token,
                               defined $user ? (user => $user) : () });
    return;
}

sub revoke_token ($) {
    admin('DELETE', "/tokens/$_[0]", undef, 200, 404);
    return;
}

# ---------------------------------------------------------------------
# Waiting and asking nginx

# Calls $cond every 50 ms until it returns true or $secs pass; returns its
# last value (false on a timeout).
sub wait_until ($$) {
    my ($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return $v if time >= $deadline;
        sleep 0.05;
    }
}

# (code, body, seconds taken) of GET http://127.0.0.1:PORT$path.
sub nginx_get ($;$$) {
    my ($path, $port, $timeout) = @_;
    $port //= $ENV{TEST_NGINX_SERVER_PORT};
    my $t0 = time;
    my $res = HTTP::Tiny->new(timeout => $timeout // 5, keep_alive => 0)
        ->get("http://127.0.0.1:$port$path");
    return ($res->{status}, $res->{content}, time - $t0);
}

# Were these answers (durations in seconds) those of a worker that never
# blocks?  A blocked worker (a synchronous request waits out its 1 s
# timeout, again at every retry) makes answers wait up to seconds, again
# and again; a loaded machine delays an answer now and then.  So: the
# median under 50 ms, at most two over 300 ms, none over 1 s.  Returns
# (ok, a summary for the test name).
sub answered_promptly ($) {
    my ($took) = @_;
    my @t = sort { $a <=> $b } @$took;
    return (0, 'no answers') unless @t;
    my $median = $t[$#t / 2];
    my $slow = grep { $_ > 0.3 } @t;
    return ($median < 0.05 && $slow <= 2 && $t[-1] <= 1,
            sprintf('%d answers, median %.3f s, %d over 0.3 s, slowest '
                    . '%.3f s', scalar @t, $median, $slow, $t[-1]));
}

# The status page as a hash (undef if it cannot be read).
sub nginx_status (;$$) {
    my ($path, $port) = @_;
    my ($code, $body) = nginx_get($path // '/leader', $port);
    return $code == 200 ? json_decode($body) : undef;
}

# A location that returns a variable's value: body of GET $path.
sub nginx_var ($;$) {
    my ($path, $port) = @_;
    my ($code, $body) = nginx_get($path, $port);
    return $code == 200 ? $body : undef;
}

# The lines of Test::Nginx's error.log (or $file) that match $re, each
# reduced to what matched: for log checks inside a block's --- init, where
# the harness's own checks cannot see a multi-request block as one.
sub log_lines ($;$) {
    my ($re, $file) = @_;
    $file //= "$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log";
    open my $in, '<', $file or return [];
    my @out;
    while (my $line = <$in>) {
        push @out, $& if $line =~ $re;
    }
    close $in;
    return \@out;
}

# client-go's MicroTime: 2006-01-02T15:04:05.000000Z
sub is_microtime ($) {
    my $t = shift;
    return defined $t && !ref $t
           && $t =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\z/;
}

start();

# Stop after nginx, so that its shutdown (the release) reaches the
# emulator: a Test::Nginx still running is stopped first.
END {
    local $?;
    if ($$ == $Owner && $Pid) {
        if (!$ENV{TEST_NGINX_NO_CLEAN}
            && defined &Test::Nginx::Util::stop_nginx)
        {
            Test::Nginx::Util::stop_nginx('END');
        }
        stop();
    }
}

1;
