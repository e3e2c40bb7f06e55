# The API server stalls (answers nothing) while the elector renews: the
# process that runs the elector (here the only one, master_process off)
# keeps answering requests promptly, the renew times out, and is_leader
# turns 0 once renew_deadline has passed since the last successful renew
# began (fail-safe).  When the API server answers again it leads again.

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

plan tests => 23;

run_tests();

__DATA__

=== TEST 1: leading
--- http_config
    leader_election web {
        lock            leases default/stall;
        identity        s1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 s1\n" });
--- request
GET /vars
--- response_body
1 s1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: the API server stalls: answered promptly, not leading after renew_deadline
--- init
my $last_renew = lease_spec('default', 'stall')->{renewTime};
my $t0 = time;
add_fault(kind => 'stall', path => '/leases/stall');
my ($bad, $flip, @took) = ('');
while (time - $t0 < 3.5) {
    for my $path ('/vars', '/leader') {
        my ($code, $body, $took) = nginx_get($path, undef, 2);
        push @took, $took;
        $bad .= sprintf("[%s %s at %.2f s]", $path, $code, time - $t0)
            if $code != 200;
        $flip //= time - $t0 if $path eq '/vars' && $body eq "0 s1\n";
    }
    sleep 0.03;
}
is($bad, '', 'every answer a 200');
my ($prompt, $how) = answered_promptly(\@took);
ok($prompt, "answered promptly while the API server stalls: $how");
ok(defined $flip && $flip <= 2.2,
   'is_leader 0 within renew_deadline of the stall (' . (defined $flip ? sprintf('%.2f s', $flip) : 'never') . ')');
my $s = nginx_status();
like($s->{last_error} // '', qr/^(?:update|get) lock: transport error: Operation timed out after 1\d\d\d milliseconds with 0 bytes received$/,
     "last_error names the timeout ($s->{last_error})");
is($s->{state}, 'following', 'state following');
is(lease_spec('default', 'stall')->{renewTime}, $last_renew, 'nothing was written meanwhile');
--- request
GET /vars
--- response_body
0 s1
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: transport error: Operation timed out after 1\d\d\d milliseconds with 0 bytes received$/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: the API server answers again: leading again
--- init
clear_faults();
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 s1\n" });
--- request
GET /vars
--- response_body
1 s1
--- error_log
leader_election "web": API server requests succeed again
--- no_error_log
[error]
[alert]
[crit]
