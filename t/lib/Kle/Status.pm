package Kle::Status;

# Canonical forms of the module's status page for exact comparisons in
# --- response_body_filters: the values that change from run to run are
# replaced by what they must look like, anything else stays as it is (so a
# wrong value or format shows up in the diff).
#
#   acquire_time, renew_time  "<MicroTime>" if 2006-01-02T15:04:05.000000Z
#   elector_pid               "<pid>" if the nginx instance's own process
#                             (master_process off) or one of its workers:
#                             /proc/PID/stat names the master as parent
#                             and the command line is "nginx: worker
#                             process"; the instance is the one whose pid
#                             file is given, else Test::Nginx's
#   heartbeat_age_ms          "<age>" if an integer in [0, 5000)
#   api.requests              "<n>" if an integer > 0
#
# The output is pretty JSON with sorted keys, 2-space indented.

use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();

use Kle::Emulator ();

our @EXPORT = qw(canon_status canon_json canon_lease canon_prometheus
                 is_elector_pid);
our @EXPORT_OK = qw(workers_of);

my $Pretty = JSON::PP->new->utf8->canonical->pretty->indent_length(2);

sub canon_json ($) {
    return $Pretty->encode(shift);
}

sub _int ($) {
    my $v = shift;
    return defined $v && !ref $v && $v =~ /^\d+\z/;
}

sub _read ($) {
    open my $in, '<', $_[0] or return undef;
    local $/;
    my $s = <$in>;
    close $in;
    return $s;
}

# Is $pid the process of the nginx instance whose pid file is $pid_file
# (single-process mode) or one of its workers?
sub is_elector_pid ($;$) {
    my ($pid, $pid_file) = @_;
    no warnings 'once';
    $pid_file //= $Test::Nginx::Util::PidFile;
    return 0 unless _int($pid) && $pid > 0 && defined $pid_file;
    my $master = _read($pid_file) // return 0;
    $master =~ s/\s+//g;
    return 0 unless _int($master) && $master > 0;
    my $stat = _read("/proc/$pid/stat") // return 0;
    my ($state, $ppid) = $stat =~ /\)\s+(\S)\s+(\d+)/ or return 0;
    return 0 if $state eq 'Z';
    return 1 if $pid == $master;
    my $cmd = _read("/proc/$pid/cmdline") // return 0;
    $cmd =~ s/\0+\z//;
    return $ppid == $master && $cmd =~ /^nginx: worker process\s*\z/;
}

# The pids of the worker processes of Test::Nginx's master (from /proc),
# ascending.
sub workers_of () {
    my $master = Test::Nginx::Util::get_pid_from_pidfile('');
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $in, '<', $stat or next;
        my $line = <$in> // '';
        close $in;
        push @w, $1 if $line =~ /^(\d+) \(nginx\) \S+ (\d+)/ && $2 == $master;
    }
    return sort { $a <=> $b } @w;
}

# A decoded status (or its JSON text) -> canonical text; $pid_file names
# the instance (default: Test::Nginx's).
sub canon_status ($;$) {
    my ($s, $pid_file) = @_;
    if (!ref $s) {
        my $d = Kle::Emulator::json_decode($s);
        return "not JSON: $s" unless ref $d eq 'HASH';
        $s = $d;
    }
    my %c = %$s;
    for my $k (qw(acquire_time renew_time)) {
        $c{$k} = '<MicroTime>' if Kle::Emulator::is_microtime($c{$k});
    }
    $c{elector_pid} = '<pid>' if is_elector_pid($c{elector_pid}, $pid_file);
    if (_int($c{heartbeat_age_ms}) && $c{heartbeat_age_ms} < 5000) {
        $c{heartbeat_age_ms} = '<age>';
    }
    if (ref $c{api} eq 'HASH') {
        my %api = %{ $c{api} };
        $api{requests} = '<n>' if _int($api{requests}) && $api{requests} > 0;
        $c{api} = \%api;
    }
    return canon_json(\%c);
}

# The instance nonce every record of the module carries.
our $Instance = 'leader-election.nginx.org/instance';

# A Lease or ConfigMap as stored -> canonical text of what the module
# controls: name, namespace, annotations and (Lease) spec, MicroTimes
# replaced by "<MicroTime>", an instance nonce by "<instance>".  Server fields (uid, resourceVersion,
# creationTimestamp) are left out.
sub canon_lease ($) {
    my $o = shift;
    return "no object" unless ref $o eq 'HASH';
    my %m = %{ $o->{metadata} || {} };
    my %ann = %{ $m{annotations} || {} };
    $ann{$Instance} = '<instance>'
        if defined $ann{$Instance} && $ann{$Instance} =~ /^[0-9a-f]{32}\z/;
    my %c = (kind => $o->{kind},
             metadata => { name => $m{name}, namespace => $m{namespace},
                           annotations => \%ann });
    if (ref $o->{spec} eq 'HASH') {
        my %spec = %{ $o->{spec} };
        for my $k (qw(acquireTime renewTime)) {
            $spec{$k} = '<MicroTime>'
                if Kle::Emulator::is_microtime($spec{$k});
        }
        $c{spec} = \%spec;
    }
    $c{data} = $o->{data} if exists $o->{data};
    return canon_json(\%c);
}

# The Prometheus text with the API request counter, if > 0, as "<n>".
sub canon_prometheus ($) {
    my $s = shift;
    $s =~ s/^(leader_election_api_requests_total\{name="[^"]*"\}) ([1-9]\d*)$/$1 <n>/mg;
    return $s;
}

1;
