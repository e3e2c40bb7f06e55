package Kle::Status;

# Canonical forms of the module's status page for exact comparisons in
# --- response_body_filters: the values that change from run to run are
# replaced by what they must look like, anything else stays as it is (so a
# wrong value or format shows up in the diff).
#
#   acquire_time, renew_time  "<MicroTime>" if 2006-01-02T15:04:05.000000Z
#   elector_pid               "<pid>" if a running process's pid
#   heartbeat_age_ms          "<age>" if an integer in [0, 5000)
#   api.requests              "<n>" if an integer > 0
#
# The output is pretty JSON with sorted keys, 2-space indented.

use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();

use Kle::Emulator ();

our @EXPORT = qw(canon_status canon_json canon_lease canon_prometheus);

my $Pretty = JSON::PP->new->utf8->canonical->pretty->indent_length(2);

sub canon_json ($) {
    return $Pretty->encode(shift);
}

sub _int ($) {
    my $v = shift;
    return defined $v && !ref $v && $v =~ /^\d+\z/;
}

# A decoded status (or its JSON text) -> canonical text.
sub canon_status ($) {
    my $s = shift;
    if (!ref $s) {
        my $d = Kle::Emulator::json_decode($s);
        return "not JSON: $s" unless ref $d eq 'HASH';
        $s = $d;
    }
    my %c = %$s;
    for my $k (qw(acquire_time renew_time)) {
        $c{$k} = '<MicroTime>' if Kle::Emulator::is_microtime($c{$k});
    }
    if (_int($c{elector_pid}) && $c{elector_pid} > 0
        && kill 0, $c{elector_pid})
    {
        $c{elector_pid} = '<pid>';
    }
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

# A Lease or ConfigMap as stored -> canonical text of what the module
# controls: name, namespace, annotations and (Lease) spec, MicroTimes
# replaced by "<MicroTime>".  Server fields (uid, resourceVersion,
# creationTimestamp) are left out.
sub canon_lease ($) {
    my $o = shift;
    return "no object" unless ref $o eq 'HASH';
    my %m = %{ $o->{metadata} || {} };
    my %c = (kind => $o->{kind},
             metadata => { name => $m{name}, namespace => $m{namespace},
                           annotations => $m{annotations} || {} });
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
