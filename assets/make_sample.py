"""Make assets/sample.mp4: Big Buck Bunny excerpt, 640x360, H.264 + AAC stereo."""
import av, sys
src = sys.argv[2] if len(sys.argv) > 2 else '../shared/data/video/bigbuckbunny_720p25_audio.mp4'
dst = sys.argv[1]
inp = av.open(src)
vin, ain = inp.streams.video[0], inp.streams.audio[0]
out = av.open(dst, 'w')
vout = out.add_stream('libx264', rate=25)
vout.width, vout.height, vout.pix_fmt = 640, 360, 'yuv420p'
vout.options = {'crf': '27', 'preset': 'slow'}
from fractions import Fraction
vout.time_base = Fraction(1, 25)
n = 0
aout = out.add_stream('aac', rate=48000)
aout.layout = 'stereo'
aout.bit_rate = 64000
res = av.AudioResampler(format='fltp', layout='stereo', rate=48000)
for pkt in inp.demux(vin, ain):
    for fr in pkt.decode():
        if pkt.stream.type == 'video':
            f2 = fr.reformat(width=640, height=360, format='yuv420p')
            f2.pts = n; f2.time_base = Fraction(1, 25); n += 1
            for p in vout.encode(f2): out.mux(p)
        else:
            for rf in res.resample(fr):
                rf.pts = None
                for p in aout.encode(rf): out.mux(p)
for p in vout.encode(): out.mux(p)
for rf in res.resample(None):
    for p in aout.encode(rf): out.mux(p)
for p in aout.encode(): out.mux(p)
out.close()
