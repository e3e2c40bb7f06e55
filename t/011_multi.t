# Two elections in one http block, each with its own lock, identity and
# zone: the suffixed variables ($leader_election_is_leader_NAME, ...) and
# "leader_election_status NAME" select one; the unsuffixed forms and a bare
# "leader_election_status" follow the first one defined.

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

put_object('leases', 'default', 'm-beta', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => {
        name => 'm-beta', namespace => 'default',
        annotations => { 'leader-election.nginx.org/address' => '10.0.0.7:80',
                         'leader-election.nginx.org/address-holder' => 'other' },
    },
    spec => {
        holderIdentity => 'other', leaseDurationSeconds => 3600,
        acquireTime => '2026-01-01T00:00:00.000000Z',
        renewTime => '2026-01-01T00:00:00.000000Z',
        leaseTransitions => 7,
    },
});

our $Alpha = <<'_EOC_';
    leader_election alpha {
        lock            leases default/m-alpha;
        identity        a1;
        address         127.0.0.1:8001;
        lease_duration  LEASE;
        renew_deadline  RENEW;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
_EOC_

our $Beta = <<'_EOC_';
    leader_election beta {
        lock            leases default/m-beta;
        identity        b1;
        address         127.0.0.1:8002;
        lease_duration  LEASE;
        renew_deadline  RENEW;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
_EOC_

our $Config = <<'_EOC_';
    location = /leader {
        leader_election_status;
    }
    location = /leader/alpha {
        leader_election_status alpha;
    }
    location = /leader/beta {
        leader_election_status beta;
    }
    location = /healthz/beta {
        leader_election_healthz beta;
    }
    location = /vars {
        return 200 "first: $leader_election_is_leader $leader_election_holder $leader_election_identity $leader_election_transitions [$leader_election_holder_address]
alpha: $leader_election_is_leader_alpha $leader_election_holder_alpha $leader_election_identity_alpha $leader_election_transitions_alpha [$leader_election_holder_address_alpha]
beta: $leader_election_is_leader_beta $leader_election_holder_beta $leader_election_identity_beta $leader_election_transitions_beta [$leader_election_holder_address_beta]
";
    }
_EOC_

# "election identity is_leader holder transitions lock" of a status page.
sub brief {
    my $s = json_decode($_[0]) or return 'not JSON';
    return join ' ', $s->{election}, $s->{identity},
        ($s->{is_leader} ? 1 : 0), $s->{holder}, $s->{transitions},
        "$s->{lock}{kind}/$s->{lock}{namespace}/$s->{lock}{name}";
}

# The elections with short timings (3s/2s/1s, for a step down) or long
# ones (10s/8s/1s, room for valgrind).
sub elections {
    my ($first, $short) = @_;
    my $c = $first eq 'alpha' ? $Alpha . $Beta : $Beta . $Alpha;
    my ($l, $r) = $short ? ('3s', '2s') : ('10s', '8s');
    $c =~ s/LEASE/$l/g;
    $c =~ s/RENEW/$r/g;
    return $c;
}

sub ready {
    wait_until(10, sub {
        my $a = nginx_status('/leader/alpha');
        my $b = nginx_status('/leader/beta');
        $a && $a->{is_leader} && $b && $b->{holder} eq 'other';
    });
}

plan tests => 52;

run_tests();

__DATA__

=== TEST 1: the suffixed variables and named status pages; the unsuffixed ones are alpha's (defined first)
--- http_config eval
main::elections('alpha')
--- config eval
$main::Config
--- init
main::ready();
my $a = get_object('leases', 'default', 'm-alpha');
is($a->{spec}{holderIdentity}, 'a1', 'alpha held by a1');
is($a->{metadata}{annotations}{'leader-election.nginx.org/address'}, '127.0.0.1:8001', "alpha's address");
my $b = lease_spec('default', 'm-beta');
is($b->{holderIdentity}, 'other', 'beta still held by other');
is($b->{renewTime}, '2026-01-01T00:00:00.000000Z', 'beta not written');
is(scalar @{ requests(method => 'PUT', path => '/leases/m-beta') }, 0, 'no PUT to beta');
--- request eval
["GET /vars", "GET /leader", "GET /leader/alpha", "GET /leader/beta", "GET /healthz/beta", "GET /leader/beta?format=prometheus"]
--- response_body_filters eval
[[], [\&main::brief], [\&main::brief], [\&main::brief], [], [sub { CORE::join '', grep { /^leader_election_(?:master_status|transitions)/ } split /^/, $_[0] }]]
--- response_body eval
["first: 1 a1 a1 0 [127.0.0.1:8001]
alpha: 1 a1 a1 0 [127.0.0.1:8001]
beta: 0 other b1 7 [10.0.0.7:80]
",
 "alpha a1 1 a1 0 leases/default/m-alpha",
 "alpha a1 1 a1 0 leases/default/m-alpha",
 "beta b1 0 other 7 leases/default/m-beta",
 "ok",
 "leader_election_master_status{name=\"beta\"} 0\nleader_election_transitions{name=\"beta\"} 7\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a step down in one election leaves the other alone
--- http_config eval
main::elections('alpha', 'short')
--- config eval
$main::Config
--- init
main::ready();
add_fault(kind => 'status', code => 500, path => '/leases/m-alpha');
wait_until(5, sub { my $s = nginx_status('/leader/alpha'); $s && !$s->{is_leader} });
is(nginx_var('/vars'), "first: 0 a1 a1 1 [127.0.0.1:8001]
alpha: 0 a1 a1 1 [127.0.0.1:8001]
beta: 0 other b1 7 [10.0.0.7:80]
", 'alpha stepped down, beta as it was');
my $b = nginx_status('/leader/beta');
is($b->{last_error}, undef, 'beta has no error');
like(nginx_status('/leader/alpha')->{last_error}, qr/^(?:get|update) lock: server error: /, 'alpha has');
clear_faults();
wait_until(6, sub { my $s = nginx_status('/leader/alpha'); $s && $s->{is_leader} });
--- request
GET /vars
--- response_body
first: 1 a1 a1 1 [127.0.0.1:8001]
alpha: 1 a1 a1 1 [127.0.0.1:8001]
beta: 0 other b1 7 [10.0.0.7:80]
--- no_error_log
[alert]
[crit]



=== TEST 3: defined the other way round, the unsuffixed forms follow beta
--- http_config eval
main::elections('beta')
--- config eval
$main::Config
--- init
main::ready();
--- request eval
["GET /vars", "GET /leader"]
--- response_body_filters eval
[[], [\&main::brief]]
--- response_body eval
["first: 0 other b1 7 [10.0.0.7:80]
alpha: 1 a1 a1 2 [127.0.0.1:8001]
beta: 0 other b1 7 [10.0.0.7:80]
", "beta b1 0 other 7 leases/default/m-beta"]
--- no_error_log
[error]
[alert]
[crit]
