package Kle::Kube;

# A real kube-apiserver and etcd (t/kube/kube_server.py) for a Test::Nginx
# suite or any Perl test: started by start(), stopped at the end of the run
# (and by a watchdog if this process dies without its END).
#
#     use Kle::Kube;
#     Kle::Kube::start() or plan skip_all => Kle::Kube::why();
#
#     leader_election web {
#         lock        leases default/nginx-web;
#         api_server  kubeconfig $TEST_NGINX_KUBE_KUBECONFIG;
#     }
#
# Environment set by start() (Test::Nginx expands $TEST_NGINX_*):
#   TEST_NGINX_KUBE_KUBECONFIG        least privilege: the Role of
#                                     docs/examples/kubernetes.yaml on
#                                     leases/default/nginx-web
#   TEST_NGINX_KUBE_ADMIN_KUBECONFIG  system:masters
#   TEST_NGINX_KUBE_URL, TEST_NGINX_KUBE_CA, TEST_NGINX_KUBE_DIR
#   and the KLE_KUBE_* variables kube_server.py prints (t/kube/README.md).
#
# Helpers (each dies on failure): kube_grant($lock[, events => 1]) returns
# the kubeconfig of the same Role for another lock ("configmaps/NS/NAME");
# kube_get($kind, $ns, $name) the object as the server holds it (undef if
# none); kube_kill($what[, $signal]), kube_restart($what), kube_pause($what),
# kube_resume($what) with $what "apiserver" or "etcd"; kube_compact().

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec ();
use File::Temp qw(tempdir);
use JSON::PP ();

our @EXPORT_OK = qw(kube_grant kube_get kube_kill kube_restart kube_pause
                    kube_resume kube_compact);

my $Here = dirname(File::Spec->rel2abs(__FILE__));
my $Script = File::Spec->rel2abs(
    File::Spec->catfile($Here, '..', '..', 'kube', 'kube_server.py'));
my $Owner = $$;
my ($Dir, $Why);

sub dir () { $Dir }
sub why () { $Why }

# The server's command line: its standard output, or die with its errors.
sub _cli (@) {
    my @cmd = ('/usr/bin/python3', $Script, @_);
    open my $out, '-|', @cmd or die "@cmd: $!\n";
    local $/;
    my $text = <$out> // '';
    close $out;
    die "kube_server.py @_[0 .. 1] failed (exit " . ($? >> 8) . ")\n" if $?;
    return $text;
}

# Starts the server: true when it runs, false (why() says why) when there is
# no kube-apiserver built (make kube-apiserver).  Dies on any other failure.
sub start () {
    return 1 if $Dir;
    my $bin = $ENV{KLE_KUBE_APISERVER}
        // File::Spec->catfile($Here, '..', '..', '..', 'build', 'kube',
                               'kube-apiserver');
    if (!-x $bin) {
        $Why = "no kube-apiserver at $bin (make kube-apiserver)";
        return 0;
    }
    $Dir = tempdir('kle-kube-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN});
    my $env = _cli('start', $Dir, '--owner', $$);
    for my $line (split /\n/, $env) {
        my ($k, $v) = $line =~ /^(KLE_KUBE_\w+)=(.*)$/ or next;
        $ENV{$k} = $v;
        (my $t = $k) =~ s/^KLE_KUBE_/TEST_NGINX_KUBE_/;
        $ENV{$t} = $v;
    }
    return 1;
}

sub stop () {
    return unless $Dir && $$ == $Owner;
    eval { _cli('stop', $Dir) };
    warn $@ if $@;
    undef $Dir;
}

END { stop() }

sub _need () { die "Kle::Kube: not started\n" unless $Dir }

sub kube_grant ($;%) {
    my ($lock, %o) = @_;
    _need();
    my $path = _cli('grant', $Dir, $lock, $o{events} ? '--events' : ());
    chomp $path;
    return $path;
}

sub kube_get ($$$) {
    _need();
    my $text = _cli('get', $Dir, join '/', @_);
    return $text =~ /\S/ ? JSON::PP->new->utf8->decode($text) : undef;
}

sub kube_kill ($;$) { _need(); _cli('kill', $Dir, $_[0], $_[1] // 9); return }
sub kube_restart ($) { _need(); _cli('restart', $Dir, $_[0]); return }
sub kube_pause ($) { _need(); _cli('pause', $Dir, $_[0]); return }
sub kube_resume ($) { _need(); _cli('resume', $Dir, $_[0]); return }
sub kube_compact () { _need(); chomp(my $r = _cli('compact', $Dir)); $r }

1;
