import signal, os
def test_sig():
    open("/tmp/sig_%d.txt" % os.getpid(), "w").write(str(signal.getsignal(signal.SIGINT)) + " blocked: " + str(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
