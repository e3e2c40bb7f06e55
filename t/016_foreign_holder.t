# A forced failover: another party writes the Lease (holder "intruder",
# valid for 30 s).  The leader's next read of the record (its renew's 409
# and the GET after it, or its watch) names another holder with a valid
# lease: every worker says is_leader 0 within about a retry period, far
# sooner than the renew deadline, and the fencing token is gone with it.

use Kle::Emulator;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('debug');
master_on();
workers(2);

plan tests => 17;

run_tests();

__DATA__

=== TEST 1: leading at 4/3/0.5 s
--- http_config
    leader_election web {
        lock            leases default/forced;
        identity        f1;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder [$leader_election_fencing_token]\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 f1 [0]\n" });
--- request
GET /vars
--- response_body
1 f1 [0]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: "intruder" writes the Lease: every worker stops claiming within about a retry period
--- init
my $obj = get_object('leases', 'default', 'forced');
$obj->{spec}{holderIdentity} = 'intruder';
$obj->{spec}{leaseDurationSeconds} = 30;
$obj->{spec}{leaseTransitions} = $obj->{spec}{leaseTransitions} + 1;
delete $obj->{metadata}{resourceVersion};
my $t0 = time;
put_object('leases', 'default', 'forced', $obj);
my ($flip, @seen);
while (time - $t0 < 4) {
    my $v = nginx_var('/vars') // '';
    push @seen, $v;
    if ($v =~ /^0 /) {
        $flip //= time - $t0;
        # both workers, a few times over
        last if @seen > 40 || time - $t0 > $flip + 0.5;
        next;
    }
    die "is_leader 1 again after 0: $v" if defined $flip;
    sleep 0.02;
}
ok(defined $flip && $flip < 1.5,
   sprintf('is_leader 0 %s s after the write (retry_period 0.5 s, renew_deadline 3 s)',
           defined $flip ? sprintf('%.2f', $flip) : 'never'));
is($seen[-1], "0 intruder []\n", 'the holder is the intruder, no fencing token');
is(lease_spec('default', 'forced')->{holderIdentity}, 'intruder',
   'the Lease still names the intruder');
my @puts = grep { ($_->{body}{spec}{holderIdentity} // '') eq 'f1' && $_->{code} == 200 }
           @{ requests(method => 'PUT', path => '/leases/forced', since => 0) };
ok(!grep({ $_->{time} > $t0 } @puts), 'f1 wrote nothing after the intruder');
--- request
GET /vars
--- response_body
0 intruder []
--- error_log
leader_election "web": stopped leading
leader_election "web": leader is now "intruder" (transitions 1)
leader_election "web": claim none now=
--- no_error_log
[error]
[alert]
[crit]
