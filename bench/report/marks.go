package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// mark is a moment on a plot's X axis drawn as a labelled vertical line,
// such as a drill's fault, with the span until it was undone shaded.
type mark struct {
	At float64
	// Until is when the mark's span ends; no span is shaded when it is
	// not after At.
	Until float64
	Label string
}

// marks draws marks across the whole height of a plot. The shading and
// lines go under the data (Under) and the labels over it (Over), so that
// neither hides the other. Marks do not widen the axes: the plot sets its
// X range to hold them.
type marks struct {
	list  []mark
	line  draw.LineStyle
	shade color.Color
	label text.Style
}

var (
	markColor  = color.RGBA{R: 0xb0, G: 0x20, B: 0x20, A: 0xff}
	markShade  = color.NRGBA{R: 0xb0, G: 0x20, B: 0x20, A: 0x20}
	otherColor = color.RGBA{R: 0x40, G: 0x40, B: 0x40, A: 0xff}
)

func newMarks(list []mark, clr, shade color.Color) *marks {
	return &marks{
		list:  list,
		line:  draw.LineStyle{Color: clr, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(2)}},
		shade: shade,
		label: text.Style{
			Color:    clr,
			Font:     sansFont(8),
			Rotation: math.Pi / 2,
			XAlign:   draw.XRight,
			YAlign:   draw.YBottom,
			Handler:  plot.DefaultTextHandler,
		},
	}
}

// Under returns the plotter of the lines and shaded spans.
func (m *marks) Under() plot.Plotter {
	return plotFunc(func(c draw.Canvas, p *plot.Plot) {
		trX, _ := p.Transforms(&c)
		for _, k := range m.list {
			x := clampX(c, trX(k.At))
			if k.Until > k.At {
				x2 := clampX(c, trX(k.Until))
				c.FillPolygon(m.shade, []vg.Point{{X: x, Y: c.Min.Y}, {X: x2, Y: c.Min.Y}, {X: x2, Y: c.Max.Y}, {X: x, Y: c.Max.Y}})
			}
			c.StrokeLine2(m.line, x, c.Min.Y, x, c.Max.Y)
		}
	})
}

// Over returns the plotter of the labels, written up along the left of
// each line from the top of the plot.
func (m *marks) Over() plot.Plotter {
	return plotFunc(func(c draw.Canvas, p *plot.Plot) {
		trX, _ := p.Transforms(&c)
		for _, k := range m.list {
			x := clampX(c, trX(k.At))
			c.FillText(m.label, vg.Point{X: x - vg.Points(1.5), Y: c.Max.Y - vg.Points(3)}, k.Label)
		}
	})
}

func clampX(c draw.Canvas, x vg.Length) vg.Length {
	return min(max(x, c.Min.X), c.Max.X)
}

// plotFunc is a plot.Plotter made of a function.
type plotFunc func(draw.Canvas, *plot.Plot)

// Plot draws f on c.
func (f plotFunc) Plot(c draw.Canvas, p *plot.Plot) { f(c, p) }
